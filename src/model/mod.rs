//! The stored configuration types and their validation: what a bucket's ACL, CORS rules,
//! website, lifecycle rules say, and the small value types they share with records (tags,
//! storage class, usage). Each parses its S3 XML/DTO form, rejects bad input with S3's error
//! codes, and evaluates itself (an ACL grants, a CORS rule matches, a website rule
//! redirects). Nothing here touches storage or requests: `model` depends only on `util`.

pub mod acl;
pub mod cors;
pub mod lifecycle;
pub mod object;
pub mod usage;
pub mod website;
