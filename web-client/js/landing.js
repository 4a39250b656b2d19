// Landing page: only the language switch; everything else is static text.
import { $ } from './dom.js';
import { initI18n } from './i18n.js';

initI18n($('#lang-button'));
