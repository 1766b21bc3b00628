//! The API's handlers, by resource.

pub(crate) mod balance;
pub(crate) mod keys;
pub(crate) mod node;
pub(crate) mod receipt;
pub(crate) mod submit;
