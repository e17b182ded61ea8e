//! Selection predicates: a label selector and a field selector, matched against what the cache
//! keeps for each object (labels and selectable fields), so filtering never decodes an object.

use ironplane_apimachinery::{fields, labels};

use crate::cacher::CachedObject;

/// Which objects a list or watch selects.
#[derive(Clone, Debug, Default)]
pub struct SelectionPredicate {
    /// `labelSelector`.
    pub labels: labels::Selector,
    /// `fieldSelector`.
    pub fields: fields::Selector,
}

impl SelectionPredicate {
    /// Everything.
    pub fn everything() -> Self {
        SelectionPredicate {
            labels: labels::Selector::everything(),
            fields: fields::Selector::everything(),
        }
    }

    /// Whether the predicate selects everything.
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether an object is selected.
    pub fn matches(&self, object: &CachedObject) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return true;
        }
        self.labels.matches(&object.labels)
            && (self.fields.is_empty()
                || self
                    .fields
                    .matches_fn(|name| object.field(name).map(str::to_owned)))
    }
}
