#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hoinghi_fuzz::audio_level(data));
