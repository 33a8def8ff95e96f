//! SOQL lexer and parser. Errors are Salesforce's `MALFORMED_QUERY`.

use crate::error::ApiError;
use time::OffsetDateTime;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Select list.
    pub fields: Vec<SelectItem>,
    /// Object in FROM.
    pub object: String,
    /// WHERE.
    pub filter: Option<Cond>,
    /// ORDER BY.
    pub order: Vec<OrderItem>,
    /// LIMIT.
    pub limit: Option<usize>,
    /// OFFSET.
    pub offset: Option<usize>,
}

/// One select item.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// A field path, e.g. `["Manager", "Email"]`.
    Field(Vec<String>),
    /// `COUNT()`.
    CountAll,
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Both.
    And(Box<Cond>, Box<Cond>),
    /// Either.
    Or(Box<Cond>, Box<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// `path op value`.
    Cmp(Vec<String>, Op, Lit),
    /// `path [NOT] IN (values)`.
    In(Vec<String>, Vec<Lit>, bool),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `null`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// Number.
    Num(f64),
    /// Quoted string.
    Str(String),
    /// Unquoted datetime.
    DateTime(OffsetDateTime),
    /// Unquoted date.
    Date(time::Date),
    /// Date literal such as `TODAY` or `LAST_N_DAYS:7`, with its parameter.
    Relative(String, i64),
}

/// An ORDER BY item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    /// Field path.
    pub path: Vec<String>,
    /// Descending.
    pub desc: bool,
    /// Nulls last (default: first for ASC, last for DESC).
    pub nulls_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    DateTime(OffsetDateTime),
    Date(time::Date),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn malformed(msg: impl Into<String>) -> ApiError {
    ApiError::bad("MALFORMED_QUERY", msg)
}

fn lex(src: &str) -> Result<Vec<Tok>, ApiError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) => "!=",
                    ('<', _) => "<",
                    _ => ">",
                };
                i += if op.len() == 2 { 2 } else { 1 };
                out.push(Tok::Op(op));
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err(malformed("unterminated string literal"));
                    };
                    i += 1;
                    match ch {
                        '\'' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(malformed("unterminated string literal"));
                            };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        other => s.push(other),
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                let is_date = chars.len() >= i + 10
                    && chars[i..i + 4].iter().all(char::is_ascii_digit)
                    && chars[i + 4] == '-'
                    && chars[i + 5..i + 7].iter().all(char::is_ascii_digit)
                    && chars[i + 7] == '-';
                i += 1;
                if is_date {
                    while i < chars.len() && (chars[i].is_ascii_digit() || matches!(chars[i], 'T' | ':' | '.' | 'Z' | '+' | '-')) {
                        i += 1;
                    }
                } else {
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                        i += 1;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                if is_date {
                    if text.len() == 10 {
                        let d = crate::clock::parse_date(&text).ok_or_else(|| malformed(format!("invalid date: {text}")))?;
                        out.push(Tok::Date(d));
                    } else {
                        let t = crate::clock::parse_datetime(&text)
                            .ok_or_else(|| malformed(format!("line 1:{start} no viable alternative at character '{text}'")))?;
                        out.push(Tok::DateTime(t));
                    }
                } else {
                    let n: f64 = text.parse().map_err(|_| malformed(format!("unexpected token: '{text}'")))?;
                    out.push(Tok::Num(n));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(malformed(format!("line 1:{i} no viable alternative at character '{other}'"))),
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k))
}

fn tok_text(t: Option<&Tok>) -> String {
    match t {
        None => "<EOF>".into(),
        Some(Tok::Ident(s)) => s.clone(),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Num(n)) => n.to_string(),
        Some(Tok::Op(o)) => (*o).into(),
        Some(Tok::LParen) => "(".into(),
        Some(Tok::RParen) => ")".into(),
        Some(Tok::Comma) => ",".into(),
        Some(Tok::Colon) => ":".into(),
        Some(Tok::DateTime(_)) | Some(Tok::Date(_)) => "date".into(),
    }
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn unexpected(&self) -> ApiError {
        malformed(format!("unexpected token: {}", tok_text(self.peek())))
    }
    fn eat_kw(&mut self, k: &str) -> bool {
        if kw(self.peek(), k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, k: &str) -> Result<(), ApiError> {
        if self.eat_kw(k) { Ok(()) } else { Err(self.unexpected()) }
    }
    fn path(&mut self) -> Result<Vec<String>, ApiError> {
        match self.next() {
            Some(Tok::Ident(s)) if !s.starts_with('.') && !s.ends_with('.') && !s.contains("..") => {
                Ok(s.split('.').map(str::to_string).collect())
            }
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn query(&mut self) -> Result<Query, ApiError> {
        self.expect_kw("SELECT")?;
        let mut fields = Vec::new();
        loop {
            if kw(self.peek(), "COUNT") && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
                self.pos += 2;
                if self.next() != Some(Tok::RParen) {
                    return Err(malformed("only COUNT() is supported by the simulator's aggregate support"));
                }
                fields.push(SelectItem::CountAll);
            } else if self.peek() == Some(&Tok::LParen) {
                return Err(malformed("subqueries are not supported by the simulator"));
            } else {
                let p = self.path()?;
                if self.peek() == Some(&Tok::LParen) {
                    return Err(malformed(format!("aggregate function {} is not supported without GROUP BY", p.join("."))));
                }
                fields.push(SelectItem::Field(p));
            }
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect_kw("FROM")?;
        let object = match self.next() {
            Some(Tok::Ident(s)) if !s.contains('.') => s,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        let filter = if self.eat_kw("WHERE") { Some(self.or()?) } else { None };
        if kw(self.peek(), "GROUP") {
            return Err(malformed("GROUP BY is not supported by the simulator"));
        }
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let path = self.path()?;
                let desc = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                let mut nulls_last = desc;
                if self.eat_kw("NULLS") {
                    if self.eat_kw("LAST") {
                        nulls_last = true;
                    } else {
                        self.expect_kw("FIRST")?;
                        nulls_last = false;
                    }
                }
                order.push(OrderItem { path, desc, nulls_last });
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        let mut limit = None;
        let mut offset = None;
        if self.eat_kw("LIMIT") {
            limit = Some(self.count()?);
        }
        if self.eat_kw("OFFSET") {
            offset = Some(self.count()?);
        }
        if self.eat_kw("FOR") || self.eat_kw("ALL") {
            // FOR VIEW / FOR REFERENCE / ALL ROWS: accepted, ignored
            while self.peek().is_some() {
                self.pos += 1;
            }
        }
        if self.peek().is_some() {
            return Err(self.unexpected());
        }
        Ok(Query { fields, object, filter, order, limit, offset })
    }

    fn count(&mut self) -> Result<usize, ApiError> {
        match self.next() {
            Some(Tok::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn or(&mut self) -> Result<Cond, ApiError> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, ApiError> {
        let mut left = self.not()?;
        while self.eat_kw("AND") {
            let right = self.not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, ApiError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let c = self.or()?;
            if self.next() != Some(Tok::RParen) {
                self.pos -= 1;
                return Err(self.unexpected());
            }
            return Ok(c);
        }
        let path = self.path()?;
        if self.eat_kw("IN") {
            return Ok(Cond::In(path, self.list()?, false));
        }
        if kw(self.peek(), "NOT") && kw(self.toks.get(self.pos + 1), "IN") {
            self.pos += 2;
            return Ok(Cond::In(path, self.list()?, true));
        }
        let op = match self.next() {
            Some(Tok::Op("=")) => Op::Eq,
            Some(Tok::Op("!=")) => Op::Ne,
            Some(Tok::Op("<")) => Op::Lt,
            Some(Tok::Op("<=")) => Op::Le,
            Some(Tok::Op(">")) => Op::Gt,
            Some(Tok::Op(">=")) => Op::Ge,
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("LIKE") => Op::Like,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        Ok(Cond::Cmp(path, op, self.lit()?))
    }

    fn list(&mut self) -> Result<Vec<Lit>, ApiError> {
        if self.next() != Some(Tok::LParen) {
            self.pos -= 1;
            return Err(self.unexpected());
        }
        if kw(self.peek(), "SELECT") {
            return Err(malformed("semi-join subqueries are not supported by the simulator"));
        }
        let mut v = vec![self.lit()?];
        loop {
            match self.next() {
                Some(Tok::Comma) => v.push(self.lit()?),
                Some(Tok::RParen) => return Ok(v),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            }
        }
    }

    fn lit(&mut self) -> Result<Lit, ApiError> {
        Ok(match self.next() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Num(n)) => Lit::Num(n),
            Some(Tok::DateTime(t)) => Lit::DateTime(t),
            Some(Tok::Date(d)) => Lit::Date(d),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Lit::Null,
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Some(Tok::Ident(s)) => {
                let up = s.to_ascii_uppercase();
                match up.as_str() {
                    "TODAY" | "YESTERDAY" | "TOMORROW" => Lit::Relative(up, 0),
                    "LAST_N_DAYS" | "NEXT_N_DAYS" | "N_DAYS_AGO" => {
                        if self.next() != Some(Tok::Colon) {
                            self.pos -= 1;
                            return Err(self.unexpected());
                        }
                        let n = self.count()? as i64;
                        Lit::Relative(up, n)
                    }
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        })
    }
}

/// Parses a SOQL string.
pub fn parse(src: &str) -> Result<Query, ApiError> {
    let toks = lex(src)?;
    P { toks, pos: 0 }.query()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Query {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_roster_query() {
        let q = p(
            "SELECT Id, Username, Manager.Email, UserRole.ParentRoleId FROM User WHERE (IsActive = true AND isQstreamUser__c = TRUE) OR SystemModstamp >= 2026-01-01T00:00:00Z ORDER BY SystemModstamp ASC, Id DESC LIMIT 10",
        );
        assert_eq!(q.fields.len(), 4);
        assert_eq!(q.fields[2], SelectItem::Field(vec!["Manager".into(), "Email".into()]));
        assert_eq!(q.object, "User");
        assert_eq!(q.order.len(), 2);
        assert!(q.order[1].desc);
        assert_eq!(q.limit, Some(10));
        assert!(matches!(q.filter, Some(Cond::Or(..))));
    }

    #[test]
    fn literals() {
        let q = p(
            "select id from Contact where Email like 'a%' and Score__c > -1.5 and Name != null and CreatedDate < 2026-01-01T00:00:00.000+01:00 and Birthdate = 2000-02-29 and Id not in ('a','b') and (not Title = 'x\\'y')",
        );
        let s = format!("{:?}", q.filter);
        assert!(s.contains("Num(-1.5)"));
        assert!(s.contains("x'y"));
        assert!(s.contains("DateTime"));
        assert!(s.contains("Date(2000-02-29)"));
        let q = p("SELECT Id FROM User WHERE CreatedDate = LAST_N_DAYS:7 AND LastLoginDate > TODAY");
        assert!(format!("{:?}", q.filter).contains("LAST_N_DAYS"));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "SELECT FROM User",
            "SELECT Id User",
            "SELECT Id FROM User WHERE",
            "SELECT Id FROM User WHERE Name = 'x",
            "SELECT Id FROM User WHERE (Name = 'x'",
            "SELECT Id FROM User LIMIT x",
            "SELECT Name, COUNT(Id) FROM User GROUP BY Name",
            "SELECT Id FROM User WHERE Name = 'a' Name",
            "SELECT Id FROM User WHERE Name # 'a'",
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.code, "MALFORMED_QUERY", "{bad}");
        }
    }
}
