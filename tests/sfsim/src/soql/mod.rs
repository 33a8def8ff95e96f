//! SOQL: a lexer and recursive-descent parser for the subset integrations use, and an evaluator
//! over an org's records (filters, relationship paths, ordering, limits, rendering).

mod eval;
mod parse;

pub use eval::{Compiled, compile};
pub use parse::{Cond, Lit, Op, OrderItem, Query, SelectItem, parse};
