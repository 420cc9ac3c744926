//! The event-field catalog: the JSON-valued fields of a stored event (a
//! span, an experiment event or a dataset row), their names and their
//! storage order, in one table.
//!
//! A row keeps its JSON fields in an array indexed by [`JsonField`]
//! (`row.json[JsonField::Scores.index()]`): the store writes and reads the
//! columns in this order, the filter compiler resolves names with it, and
//! the export encoders walk it, so no module spells the list out again or
//! addresses a field by a bare number. A leaf: it imports nothing of
//! Herald, so the store, the filter compiler and the export encoders can
//! all depend on it without depending on each other.
//!
//! Adding a field is one variant here (and a migration for its column).

/// A JSON-valued field, in storage order: its discriminant is its index in
/// [`JSON_FIELDS`] and in every per-row array of JSON fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonField {
    /// The parent span ids (`[]` or absent for a root).
    SpanParents,
    /// What the span was given.
    Input,
    /// What it produced.
    Output,
    /// What it should have produced.
    Expected,
    /// What went wrong.
    Error,
    /// Named scores in `[0, 1]`.
    Scores,
    /// Named numbers (`start`, `end`, token counts, costs).
    Metrics,
    /// Anything the application logs with it.
    Metadata,
    /// Labels.
    Tags,
    /// `name`, `type` and other span attributes.
    SpanAttributes,
    /// Where in the application it was logged.
    Context,
}

/// How many JSON fields a row has.
pub const JSON_FIELD_COUNT: usize = JsonField::ALL.len();

/// The JSON fields' names, in storage order (the API's and the columns'
/// names are the same).
pub const JSON_FIELDS: [&str; JSON_FIELD_COUNT] = {
    let mut names = [""; JSON_FIELD_COUNT];
    let mut i = 0;
    while i < JSON_FIELD_COUNT {
        names[i] = JsonField::ALL[i].name();
        i += 1;
    }
    names
};

impl JsonField {
    /// Every JSON field, in storage order.
    pub const ALL: [JsonField; 11] = [
        JsonField::SpanParents,
        JsonField::Input,
        JsonField::Output,
        JsonField::Expected,
        JsonField::Error,
        JsonField::Scores,
        JsonField::Metrics,
        JsonField::Metadata,
        JsonField::Tags,
        JsonField::SpanAttributes,
        JsonField::Context,
    ];

    /// The field's name in the API, in filters and as a column.
    pub const fn name(self) -> &'static str {
        match self {
            JsonField::SpanParents => "span_parents",
            JsonField::Input => "input",
            JsonField::Output => "output",
            JsonField::Expected => "expected",
            JsonField::Error => "error",
            JsonField::Scores => "scores",
            JsonField::Metrics => "metrics",
            JsonField::Metadata => "metadata",
            JsonField::Tags => "tags",
            JsonField::SpanAttributes => "span_attributes",
            JsonField::Context => "context",
        }
    }

    /// Its place in storage order.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The field named `name` (exactly), if it is one.
    pub fn from_name(name: &str) -> Option<JsonField> {
        JsonField::ALL
            .into_iter()
            .find(|field| field.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_of_the_table_is_the_order_of_the_indexes() {
        for (i, field) in JsonField::ALL.into_iter().enumerate() {
            assert_eq!(field.index(), i, "{field:?}");
            assert_eq!(JSON_FIELDS[i], field.name());
            assert_eq!(JsonField::from_name(field.name()), Some(field));
        }
        assert_eq!(JsonField::from_name("Scores"), None, "names are exact");
    }
}
