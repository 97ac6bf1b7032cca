//! Who is asking and what they may do: principals and their keys ([`keys`]) and the single
//! authorization decision for every request ([`access`]).

pub mod access;
pub mod keys;
pub mod policy;

pub use access::{Authorizer, ClientInfo, RequestFacts};
pub use keys::{KeyAuth, RootKey};
