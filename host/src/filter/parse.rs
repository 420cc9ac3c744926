//! From filter text to sqlparser's expression tree.
//!
//! `INCLUDES` and `MATCH` are not SQL operators, so the text is tokenized
//! with sqlparser's tokenizer first and each of those words (unquoted, and
//! not a field name after a `.`) is replaced by a PostgreSQL operator token
//! the parser does know, with the word's original span: `INCLUDES` → `@>`,
//! `NOT INCLUDES` → `<@`, `MATCH` → `@@`, `NOT MATCH` → `@?`. Those operator
//! tokens are rejected when they appear in the text itself, so in the parsed
//! tree they always mean the words. Comments and a trailing `;` are
//! rejected here too. Positions in errors are the user's own line and column.

use sqlparser::ast::Expr;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::FilterError;
use crate::sql_budget::FILTER_BUDGET;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = FILTER_BUDGET.max_bytes;

/// Nesting depth accepted by the parser.
const RECURSION_LIMIT: usize = 64;

/// Parses `source` into sqlparser's tree, with `INCLUDES`/`MATCH` rewritten.
///
/// The text is held to [`FILTER_BUDGET`]: its length and structure before
/// parsing, its depth after. Call it on a deep stack
/// ([`crate::sql_budget::on_deep_stack`]), as [`super::Filter::parse`] does:
/// the tree may be as deep as the structure budget before the depth check.
pub fn parse_sql(source: &str) -> Result<Expr, FilterError> {
    let over = |e: crate::sql_budget::OverBudget| FilterError::at(e.0, Location::new(1, 1));
    FILTER_BUDGET.check_len(source).map_err(over)?;
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, source)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| FilterError::at(e.message, e.location))?;
    let tokens = rewrite_words(tokens)?;
    FILTER_BUDGET.check_tokens(&tokens).map_err(over)?;
    if tokens.iter().all(|t| is_blank(&t.token)) {
        return Err(FilterError::at("filter is empty", Location::new(1, 1)));
    }
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(from_parser_error)?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(FilterError::at(
            format!(
                "unexpected {} after the end of the filter",
                describe(&next.token)
            ),
            next.span.start,
        ));
    }
    FILTER_BUDGET.check_depth(&expr).map_err(over)?;
    Ok(expr)
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_) | Token::EOF)
}

/// A token for messages: keywords and punctuation in backticks.
pub fn describe(token: &Token) -> String {
    match token {
        Token::EOF => "end of filter".to_string(),
        other => format!("`{other}`"),
    }
}

/// Replaces `INCLUDES`/`MATCH` (and `NOT` before them) with operator
/// tokens, and rejects comments, `;` and the operator tokens themselves.
fn rewrite_words(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, FilterError> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        match &t.token {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                return Err(FilterError::at(
                    "comments are not allowed in filters",
                    t.span.start,
                ));
            }
            Token::SemiColon => {
                return Err(FilterError::at(
                    "`;` is not allowed: a filter is a single expression",
                    t.span.start,
                ));
            }
            Token::AtArrow | Token::ArrowAt | Token::AtAt | Token::AtQuestion => {
                return Err(FilterError::at(
                    format!("unsupported operator `{}`", t.token),
                    t.span.start,
                ));
            }
            Token::Word(w) if w.quote_style.is_none() => {
                let upper = w.value.to_ascii_uppercase();
                let prev = out.iter().rposition(|p| !is_blank(&p.token));
                let after_dot = prev.is_some_and(|i| out[i].token == Token::Period);
                let (positive, negative) = match upper.as_str() {
                    "INCLUDES" if !after_dot => (Token::AtArrow, Token::ArrowAt),
                    "MATCH" if !after_dot => (Token::AtAt, Token::AtQuestion),
                    _ => {
                        out.push(t);
                        continue;
                    }
                };
                let negated = prev.is_some_and(|i| {
                    matches!(&out[i].token, Token::Word(p)
                        if p.quote_style.is_none() && p.value.eq_ignore_ascii_case("NOT"))
                });
                let mut span = t.span;
                let token = if negated {
                    let i = prev.unwrap_or_default();
                    span.start = out[i].span.start;
                    out.truncate(i);
                    negative
                } else {
                    positive
                };
                out.push(TokenWithSpan { token, span });
            }
            _ => out.push(t),
        }
    }
    Ok(out)
}

/// Turns sqlparser's message, which ends in "at Line: L, Column: C", into a
/// positioned [`FilterError`].
fn from_parser_error(err: ParserError) -> FilterError {
    let text = match err {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => {
            return FilterError::at(
                format!("filter is nested more than {RECURSION_LIMIT} levels deep"),
                Location::new(1, 1),
            );
        }
    };
    let mut location = Location::new(1, 1);
    let mut message = text.as_str();
    if let Some(i) = text.rfind(" at Line: ") {
        let tail = &text[i + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        if let (Some(l), Some(c)) = (parts.next(), parts.next())
            && let (Ok(l), Ok(c)) = (l.trim().parse(), c.trim().parse())
        {
            location = Location::new(l, c);
            message = &text[..i];
        }
    }
    let message = message
        .replace("sql parser error: ", "")
        .replace("Expected: ", "expected ")
        .replace(", found: ", ", found ");
    FilterError::at(message, location)
}
