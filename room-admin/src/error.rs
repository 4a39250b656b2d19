//! The storage layer's error: what went wrong in words staff can act on, with the field it is
//! about. The API turns it into `{"error": {"code", "message", "fields"}}`; a database failure
//! is logged and shown only as "internal error".

use std::collections::BTreeMap;

/// Field name → message, for forms.
pub type Fields = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// No such point, meeting, seat or account.
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule; `fields` says which.
    #[error("{message}")]
    Invalid { message: String, fields: Fields },
    /// The input is fine but clashes with what is stored (duplicate code, cancelled meeting).
    #[error("{message}")]
    Conflict { message: String, fields: Fields },
}

impl StoreError {
    pub fn invalid(fields: Fields) -> StoreError {
        StoreError::Invalid {
            message: "Dữ liệu chưa hợp lệ. / Some fields are not valid.".into(),
            fields,
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> StoreError {
        let mut fields = Fields::new();
        fields.insert(field.to_owned(), message.into());
        StoreError::invalid(fields)
    }

    pub fn conflict(message: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            message: message.into(),
            fields: Fields::new(),
        }
    }

    pub fn conflict_field(field: &str, message: impl Into<String>) -> StoreError {
        let message = message.into();
        let mut fields = Fields::new();
        fields.insert(field.to_owned(), message.clone());
        StoreError::Conflict { message, fields }
    }
}

/// Collects field errors while checking a form.
#[derive(Debug, Default)]
pub struct Check {
    pub fields: Fields,
}

impl Check {
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// A trimmed text of at most `max` characters, non-empty when `required`. Control
    /// characters other than newline and tab are refused (they have no place in a form and
    /// break CSV and iCalendar output).
    pub fn text(&mut self, field: &str, value: &str, required: bool, max: usize) -> String {
        let v = value.trim();
        if required && v.is_empty() {
            self.fail(field, "Bắt buộc. / Required.");
        } else if v.chars().count() > max {
            self.fail(
                field,
                format!("Tối đa {max} ký tự. / At most {max} characters."),
            );
        } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.fail(
                field,
                "Có ký tự điều khiển không hợp lệ. / Contains control characters.",
            );
        }
        v.to_owned()
    }

    /// A list of names (observers, relay seats): each a required [`Check::text`] checked as
    /// `field[i]`, duplicates dropped (a name is matched to its seat across edits), order kept.
    pub fn names(&mut self, field: &str, values: &[String], max: usize) -> Vec<String> {
        let mut names = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let name = self.text(&format!("{field}[{i}]"), value, true, max);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    pub fn finish(self) -> Result<(), StoreError> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(StoreError::invalid(self.fields))
        }
    }
}
