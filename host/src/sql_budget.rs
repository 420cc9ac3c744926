//! Bounds on user-written SQL: alert filters, custom export queries and
//! every later query a user may type (windowed alert calculations).
//!
//! A request must never be able to drive Herald, or the database behind
//! it, past a limit it does not know about. Three things can go wrong with
//! text a user sends, and each has its own bound here:
//!
//! * **Size.** The text is capped in bytes ([`Budget::max_bytes`]) before
//!   anything else looks at it.
//! * **Recursion in Herald.** sqlparser parses a flat chain such as
//!   `1+1+…+1` in a loop, but the tree it builds is as deep as the chain is
//!   long, and everything that walks the tree afterwards (the checks, the
//!   visitors, `Display`, even `Drop`) recurses once per level. A 6 KB
//!   chain used to overflow a 2 MB worker stack. So, before parsing, the
//!   tokens that can add a level to the tree (operators, parentheses,
//!   brackets and the keywords that build expressions) are counted
//!   ([`structure_tokens`]) against [`Budget::max_structure`]; that count is
//!   an upper bound of the tree's depth. Parsing and checking then run on a
//!   thread with a stack large enough for that bound ([`on_deep_stack`]),
//!   never on a runtime worker.
//! * **The database's own limits.** SQLite refuses expressions nested more
//!   than 1,000 levels deep (`SQLITE_MAX_EXPR_DEPTH`) and PostgreSQL stops at
//!   `max_stack_depth`; a filter that passed Herald's check but breaks those
//!   would be accepted and then fail on every run. [`measure_depth`] walks
//!   the parsed tree and counts the nesting the database will see (a flat
//!   `a OR b OR c` is three levels to both engines), and the budget's
//!   [`Budget::max_depth`] stays well below either limit, so whatever is
//!   accepted runs.
//!
//! The numbers are deliberately generous for hand-written filters and
//! queries and far from what either engine tolerates; the trade-off is
//! that a machine-generated filter with thousands of `OR`s is refused (an
//! `IN (…)` list of any length is one level and costs one token).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, SetExpr, TableFactor, Visit, Visitor};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Limits for one kind of user-written SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// What the text is called in messages ("filter", "query").
    pub noun: &'static str,
    /// Longest text accepted, in bytes.
    pub max_bytes: usize,
    /// Most tokens that can add a level to the tree (see [`structure_tokens`]).
    pub max_structure: usize,
    /// Deepest nesting of expressions and subqueries accepted after parsing.
    pub max_depth: usize,
}

/// Alert filters: one boolean expression.
pub const FILTER_BUDGET: Budget = Budget {
    noun: "filter",
    max_bytes: 16 * 1024,
    max_structure: 2_048,
    max_depth: 200,
};

/// Custom export queries (and windowed alert calculations).
pub const QUERY_BUDGET: Budget = Budget {
    noun: "query",
    max_bytes: 64 * 1024,
    max_structure: 8_192,
    max_depth: 200,
};

/// The stack of the thread that parses and checks user SQL: enough for a
/// tree [`Budget::max_structure`] levels deep with a few KB per level. It is
/// address space, not memory: only the pages a walk touches are used.
const DEEP_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Why text was refused by its budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OverBudget(pub String);

impl Budget {
    /// Refuses text longer than [`Budget::max_bytes`].
    pub fn check_len(&self, text: &str) -> Result<(), OverBudget> {
        if text.len() > self.max_bytes {
            return Err(OverBudget(format!(
                "the {} is {} bytes long; the limit is {} bytes",
                self.noun,
                text.len(),
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a token stream with more structure than the budget allows.
    pub fn check_tokens(&self, tokens: &[TokenWithSpan]) -> Result<(), OverBudget> {
        let count = structure_tokens(tokens);
        if count > self.max_structure {
            return Err(OverBudget(format!(
                "the {} has {count} operators, parentheses and keywords; the limit is {} \
                 (a long chain of AND/OR or arithmetic is better written with IN (…))",
                self.noun, self.max_structure
            )));
        }
        Ok(())
    }

    /// Refuses a parsed tree nested deeper than [`Budget::max_depth`].
    pub fn check_depth<T: Visit>(&self, tree: &T) -> Result<(), OverBudget> {
        let depth = measure_depth(tree);
        if depth > self.max_depth {
            return Err(OverBudget(format!(
                "the {} is nested {depth} levels deep (each term of a chain of AND, OR or \
                 arithmetic counts as a level); the limit is {}",
                self.noun, self.max_depth
            )));
        }
        Ok(())
    }
}

/// Counts the tokens that can add a level to a parsed tree: every operator
/// and punctuation mark except `,` and `.`, and the keywords that build
/// expressions or subqueries. Identifiers, literals, commas and whitespace
/// never deepen a tree, so they are free (a long `IN` list costs nothing).
pub fn structure_tokens(tokens: &[TokenWithSpan]) -> usize {
    tokens
        .iter()
        .filter(|t| match &t.token {
            Token::Word(word) => matches!(
                word.keyword,
                Keyword::AND
                    | Keyword::OR
                    | Keyword::XOR
                    | Keyword::NOT
                    | Keyword::IS
                    | Keyword::IN
                    | Keyword::BETWEEN
                    | Keyword::LIKE
                    | Keyword::ILIKE
                    | Keyword::SIMILAR
                    | Keyword::GLOB
                    | Keyword::REGEXP
                    | Keyword::RLIKE
                    | Keyword::MATCH
                    | Keyword::CASE
                    | Keyword::WHEN
                    | Keyword::THEN
                    | Keyword::ELSE
                    | Keyword::CAST
                    | Keyword::COLLATE
                    | Keyword::AT
                    | Keyword::EXISTS
                    | Keyword::SELECT
                    | Keyword::INTERVAL
                    | Keyword::ANY
                    | Keyword::ALL
                    | Keyword::SOME
                    | Keyword::ESCAPE
                    | Keyword::DIV
                    | Keyword::UNION
                    | Keyword::INTERSECT
                    | Keyword::EXCEPT
                    | Keyword::JOIN
                    | Keyword::ON
                    | Keyword::NOTNULL
                    | Keyword::OVERLAPS
                    | Keyword::MEMBER
            ),
            Token::Whitespace(_)
            | Token::EOF
            | Token::Comma
            | Token::Period
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_) => false,
            _ => true,
        })
        .count()
}

/// The deepest nesting of expressions and queries in `tree`, as a database
/// sees it: each expression node inside another is a level, and so is each
/// subquery and each set operation (`UNION` chains nest like `OR` chains).
pub fn measure_depth<T: Visit>(tree: &T) -> usize {
    let mut meter = DepthMeter::default();
    let _ = tree.visit(&mut meter);
    meter.deepest
}

#[derive(Default)]
struct DepthMeter {
    depth: usize,
    deepest: usize,
}

impl DepthMeter {
    fn enter(&mut self, levels: usize) {
        self.depth += levels;
        self.deepest = self.deepest.max(self.depth);
    }
}

/// How many levels a set operation adds: `a UNION b UNION c` is a chain.
fn set_levels(body: &SetExpr) -> usize {
    let mut levels = 0;
    let mut node = body;
    while let SetExpr::SetOperation { left, .. } = node {
        levels += 1;
        node = left;
    }
    levels
}

impl Visitor for DepthMeter {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter(1);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.enter(1 + set_levels(&query.body));
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.depth -= 1 + set_levels(&query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.enter(1);
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Runs `work` on a thread with a [`DEEP_STACK_BYTES`] stack and waits for
/// it. Parsing, checking and dropping a tree of user SQL happen in there,
/// so the depth a request can reach is bounded by the budget's token count
/// and this stack, never by a runtime worker's 2 MB. Spawning the thread
/// costs tens of microseconds, paid once per parse (at create, per fetch,
/// per evaluation), which is noise next to the query it guards.
pub fn on_deep_stack<T, F>(work: F) -> T
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("herald-sql-check".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, work);
        match handle {
            Ok(handle) => match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            // The process is out of threads or address space: fail this one
            // request (its task), not the daemon.
            Err(error) => panic!("could not start a thread to check user SQL: {error}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;
    use sqlparser::tokenizer::Tokenizer;

    fn tokens(sql: &str) -> Vec<TokenWithSpan> {
        Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap()
    }

    #[test]
    fn lists_and_literals_are_free_operators_are_not() {
        let list = format!(
            "x IN ({})",
            (0..500)
                .map(|i| format!("'v{i}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(structure_tokens(&tokens(&list)), 3);
        assert_eq!(structure_tokens(&tokens("a.b = 1 AND (c < 2)")), 5);
    }

    #[test]
    fn depth_counts_flat_chains_per_term() {
        let chain = vec!["x = 1"; 50].join(" OR ");
        let expr = Parser::new(&GenericDialect {})
            .try_with_sql(&chain)
            .unwrap()
            .parse_expr()
            .unwrap();
        let depth = measure_depth(&expr);
        assert!((50..=52).contains(&depth), "{depth}");
        let error = FILTER_BUDGET
            .check_depth(&{
                let chain = vec!["1"; 300].join(" + ");
                Parser::new(&GenericDialect {})
                    .try_with_sql(&chain)
                    .unwrap()
                    .parse_expr()
                    .unwrap()
            })
            .unwrap_err();
        assert!(error.0.contains("limit is 200"), "{error}");
    }

    #[test]
    fn deep_trees_are_checked_on_the_deep_stack() {
        // 8,000 levels: far past what a 2 MB stack survives when visited.
        let chain = vec!["1"; 8_000].join("+");
        let depth = on_deep_stack(|| {
            let expr = Parser::new(&GenericDialect {})
                .try_with_sql(&chain)
                .unwrap()
                .parse_expr()
                .unwrap();
            measure_depth(&expr)
        });
        assert!(depth >= 8_000, "{depth}");
    }
}
