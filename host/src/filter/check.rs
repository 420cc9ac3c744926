//! The allow-list and type check: sqlparser's tree → [`Pred`].
//!
//! Only the constructs listed in the [module docs](super) are accepted; any
//! other node (subqueries, casts, unknown functions or fields, …) is an
//! error naming the construct and its position. JSON fields have no type of
//! their own: a comparison gives them the type of the other side, so
//! `scores.accuracy < 0.8` reads `accuracy` as a number and
//! `metadata.env = 'prod'` reads `env` as a string.

use chrono::TimeDelta;
use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArguments, Ident, InTarget, Subscript, UnaryOperator,
    Value,
};

use super::FilterError;
use super::ast::{ArithOp, CmpOp, Column, Field, Lit, PathSeg, Pred, Scalar, Ty};
use super::time::{interval_micros, parse_time};
use crate::columns::DbTime;

type Result<T> = std::result::Result<T, FilterError>;

/// A value expression before its type is settled.
enum Node {
    /// A field; JSON fields get their type from context.
    Field(Field),
    /// Anything with a known type.
    Typed(Scalar, Ty),
}

fn err(expr: &Expr, message: impl Into<String>) -> FilterError {
    FilterError::at_expr(expr, message)
}

/// Checks a whole filter, which must be a predicate.
pub fn check(expr: &Expr) -> Result<Pred> {
    predicate(expr)
}

fn predicate(expr: &Expr) -> Result<Pred> {
    match expr {
        Expr::Nested(inner) => predicate(inner),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => Ok(Pred::And(
                Box::new(predicate(left)?),
                Box::new(predicate(right)?),
            )),
            BinaryOperator::Or => Ok(Pred::Or(
                Box::new(predicate(left)?),
                Box::new(predicate(right)?),
            )),
            BinaryOperator::AtArrow | BinaryOperator::ArrowAt => {
                let pred = includes(left, right)?;
                Ok(negate_if(pred, *op == BinaryOperator::ArrowAt))
            }
            BinaryOperator::AtAt | BinaryOperator::AtQuestion => {
                let pred = text_match(left, right)?;
                Ok(negate_if(pred, *op == BinaryOperator::AtQuestion))
            }
            _ => match cmp_op(op) {
                Some(op) => compare(left, op, right),
                None => Err(err(expr, format!("`{op}` is not a condition"))),
            },
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        } => Ok(Pred::Not(Box::new(predicate(inner)?))),
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            let negated = matches!(expr, Expr::IsNotNull(_));
            match node(inner)? {
                Node::Field(field) => Ok(Pred::IsNull { field, negated }),
                Node::Typed(Scalar::Column(c), _) => Ok(Pred::IsNull {
                    field: Field {
                        column: c,
                        path: vec![],
                    },
                    negated,
                }),
                Node::Typed(..) => Err(err(inner, "IS NULL applies to fields only")),
            }
        }
        Expr::IsTrue(inner)
        | Expr::IsFalse(inner)
        | Expr::IsNotTrue(inner)
        | Expr::IsNotFalse(inner) => {
            let value = coerce(inner, node(inner)?, Ty::Bool)?;
            let truth = matches!(expr, Expr::IsTrue(_) | Expr::IsNotTrue(_));
            let negated = matches!(expr, Expr::IsNotTrue(_) | Expr::IsNotFalse(_));
            Ok(Pred::IsBool {
                value,
                truth,
                negated,
            })
        }
        Expr::In {
            target: InTarget::List(list),
            expr: value,
            negated,
            ..
        } => in_list(value, list, *negated),
        Expr::Between {
            expr: value,
            negated,
            low,
            high,
        } => {
            let ge = compare(value, CmpOp::Ge, low)?;
            let le = compare(value, CmpOp::Le, high)?;
            Ok(negate_if(Pred::And(Box::new(ge), Box::new(le)), *negated))
        }
        Expr::Like {
            negated,
            any: false,
            expr: value,
            pattern,
            escape_char: None,
        } => like(value, pattern, false, *negated),
        Expr::ILike {
            negated,
            any: false,
            expr: value,
            pattern,
            escape_char: None,
        } => like(value, pattern, true, *negated),
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Ok(Pred::Const(*b)),
            _ => Err(err(expr, "expected a condition, found a value")),
        },
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => {
            let value = coerce(expr, node(expr)?, Ty::Bool)?;
            Ok(Pred::Truthy(value))
        }
        other => Err(unsupported(other)),
    }
}

fn negate_if(pred: Pred, negated: bool) -> Pred {
    if negated {
        Pred::Not(Box::new(pred))
    } else {
        pred
    }
}

fn unsupported(expr: &Expr) -> FilterError {
    let what = match expr {
        Expr::Subquery(_)
        | Expr::Exists { .. }
        | Expr::In {
            target: InTarget::Subquery(_),
            ..
        } => "subqueries are not allowed in filters".to_string(),
        Expr::In { .. } => "only IN with a list of values is allowed".to_string(),
        Expr::Function(f) => format!("unknown function `{}`: the only function is now()", f.name),
        Expr::Cast { .. } => "casts are not allowed in filters".to_string(),
        Expr::Like { .. } | Expr::ILike { .. } => {
            "LIKE with ANY or ESCAPE is not supported (the escape character is `\\`)".to_string()
        }
        other => {
            let text = other.to_string();
            let short: String = text.chars().take(40).collect();
            format!("`{short}` is not allowed in filters")
        }
    };
    err(expr, what)
}

fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}

fn compare(left: &Expr, op: CmpOp, right: &Expr) -> Result<Pred> {
    reject_null(left)?;
    reject_null(right)?;
    let (l, r) = (node(left)?, node(right)?);
    let ty = match (type_of(&l), type_of(&r)) {
        (Some(a), Some(b)) if a == b => a,
        // A string next to a timestamp is a timestamp literal.
        (Some(Ty::Time), Some(Ty::Text)) | (Some(Ty::Text), Some(Ty::Time)) => Ty::Time,
        (Some(a), Some(b)) => {
            return Err(err(
                right,
                format!("cannot compare {} with {}", a.name(), b.name()),
            ));
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return Err(err(
                left,
                "cannot compare two JSON fields: compare a field with a literal value",
            ));
        }
    };
    if ty == Ty::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return Err(err(left, "booleans can only be compared with = and !="));
    }
    let left = coerce(left, l, ty)?;
    let right = coerce(right, r, ty)?;
    Ok(Pred::Compare {
        left,
        op,
        right,
        ty,
    })
}

fn reject_null(expr: &Expr) -> Result<()> {
    if let Expr::Value(v) = expr
        && v.value == Value::Null
    {
        return Err(err(expr, "use IS NULL or IS NOT NULL to test for null"));
    }
    Ok(())
}

fn type_of(node: &Node) -> Option<Ty> {
    match node {
        Node::Field(f) => f.column.native_type(),
        Node::Typed(_, t) => Some(*t),
    }
}

/// Gives `node` the type `ty`, or explains why it cannot have it.
fn coerce(expr: &Expr, node: Node, ty: Ty) -> Result<Scalar> {
    match node {
        Node::Field(field) => match field.column.native_type() {
            Some(native) if native == ty => Ok(Scalar::Column(field.column)),
            Some(native) => Err(err(
                expr,
                format!(
                    "`{}` is {}, not {}",
                    field.column.sql_name(),
                    native.name(),
                    ty.name()
                ),
            )),
            None if ty == Ty::Time => Err(err(
                expr,
                "only `created` holds timestamps; compare JSON fields with strings or numbers",
            )),
            None => Ok(Scalar::Json(field, ty)),
        },
        Node::Typed(Scalar::Lit(Lit::Text(text)), Ty::Text) if ty == Ty::Time => parse_time(&text)
            .map(|t| Scalar::Lit(Lit::Time(t)))
            .ok_or_else(|| {
                err(
                    expr,
                    format!(
                        "{text:?} is not a timestamp (use RFC 3339, e.g. '2024-05-01T12:00:00Z')"
                    ),
                )
            }),
        Node::Typed(scalar, actual) if actual == ty => Ok(scalar),
        Node::Typed(_, actual) => Err(err(
            expr,
            format!("expected {}, found {}", ty.name(), actual.name()),
        )),
    }
}

fn in_list(value: &Expr, list: &[Expr], negated: bool) -> Result<Pred> {
    let first = list
        .first()
        .ok_or_else(|| err(value, "IN needs at least one value"))?;
    let mut lits = Vec::with_capacity(list.len());
    let mut ty = None;
    for item in list {
        reject_null(item)?;
        match node(item)? {
            Node::Typed(Scalar::Lit(lit), t) => {
                if ty.is_some_and(|prev| prev != t) {
                    return Err(err(
                        item,
                        "all values in an IN list must have the same type",
                    ));
                }
                ty = Some(t);
                lits.push(lit);
            }
            _ => return Err(err(item, "IN lists may only contain literal values")),
        }
    }
    let list_ty = ty.ok_or_else(|| err(first, "IN needs at least one value"))?;
    let subject = node(value)?;
    let ty = match (type_of(&subject), list_ty) {
        (Some(Ty::Time), Ty::Text) => Ty::Time,
        (Some(t), _) => t,
        (None, t) => t,
    };
    let value = coerce(value, subject, ty)?;
    let lits = list
        .iter()
        .zip(lits)
        .map(
            |(expr, lit)| match coerce(expr, Node::Typed(Scalar::Lit(lit), list_ty), ty)? {
                Scalar::Lit(lit) => Ok(lit),
                _ => Err(err(expr, "IN lists may only contain literal values")),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(Pred::In {
        value,
        list: lits,
        negated,
    })
}

fn like(value: &Expr, pattern: &Expr, case_insensitive: bool, negated: bool) -> Result<Pred> {
    let Node::Typed(Scalar::Lit(Lit::Text(text)), _) = node(pattern)? else {
        return Err(err(pattern, "the pattern of LIKE must be a string literal"));
    };
    let trailing = text.chars().rev().take_while(|c| *c == '\\').count();
    if trailing % 2 == 1 {
        return Err(err(
            pattern,
            "the LIKE pattern ends with the escape character `\\`",
        ));
    }
    let value = coerce(value, node(value)?, Ty::Text)?;
    Ok(Pred::Like {
        value,
        pattern: text,
        case_insensitive,
        negated,
    })
}

fn includes(left: &Expr, right: &Expr) -> Result<Pred> {
    let field = match node(left)? {
        Node::Field(f) if f.column.native_type().is_none() => f,
        _ => return Err(err(left, "INCLUDES applies to array fields such as `tags`")),
    };
    reject_null(right)?;
    match node(right)? {
        Node::Typed(Scalar::Lit(item @ (Lit::Text(_) | Lit::Number(_) | Lit::Bool(_))), _) => {
            Ok(Pred::Includes { field, item })
        }
        _ => Err(err(right, "INCLUDES needs a literal value on its right")),
    }
}

fn text_match(left: &Expr, right: &Expr) -> Result<Pred> {
    let field = match node(left)? {
        Node::Field(f)
            if !matches!(
                f.column.native_type(),
                Some(Ty::Bool | Ty::Number | Ty::Time)
            ) =>
        {
            f
        }
        _ => return Err(err(left, "MATCH applies to text and JSON fields")),
    };
    match node(right)? {
        Node::Typed(Scalar::Lit(Lit::Text(text)), _) if !text.is_empty() => {
            Ok(Pred::Match { field, text })
        }
        _ => Err(err(
            right,
            "MATCH needs a non-empty string literal on its right",
        )),
    }
}

/// Converts a value expression.
fn node(expr: &Expr) -> Result<Node> {
    match expr {
        Expr::Nested(inner) => node(inner),
        Expr::Identifier(ident) => field(expr, std::slice::from_ref(ident), &[]),
        Expr::CompoundIdentifier(idents) => field(expr, idents, &[]),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let idents = match root.as_ref() {
                Expr::Identifier(i) => vec![i.clone()],
                Expr::CompoundIdentifier(ids) => ids.clone(),
                other => return Err(err(other, "expected a field name")),
            };
            field(expr, &idents, access_chain)
        }
        Expr::Value(v) => Ok(match &v.value {
            Value::SingleQuotedString(s) => {
                Node::Typed(Scalar::Lit(Lit::Text(s.clone())), Ty::Text)
            }
            Value::Number(n, _) => match n.parse::<f64>() {
                Ok(x) if x.is_finite() => Node::Typed(Scalar::Lit(Lit::Number(x)), Ty::Number),
                _ => return Err(err(expr, format!("{n} is not a valid number"))),
            },
            Value::Boolean(b) => Node::Typed(Scalar::Lit(Lit::Bool(*b)), Ty::Bool),
            Value::Null => return Err(err(expr, "null is only allowed in IS NULL / IS NOT NULL")),
            other => {
                return Err(err(
                    expr,
                    format!("unsupported literal {other}: use 'single-quoted' strings"),
                ));
            }
        }),
        Expr::UnaryOp { op, expr: inner } => match op {
            UnaryOperator::Minus => match node(inner)? {
                Node::Typed(Scalar::Lit(Lit::Number(x)), _) => {
                    Ok(Node::Typed(Scalar::Lit(Lit::Number(-x)), Ty::Number))
                }
                n => Ok(Node::Typed(
                    Scalar::Neg(Box::new(coerce(inner, n, Ty::Number)?)),
                    Ty::Number,
                )),
            },
            UnaryOperator::Plus => Ok(Node::Typed(
                coerce(inner, node(inner)?, Ty::Number)?,
                Ty::Number,
            )),
            _ => Err(err(expr, format!("`{op}` is not allowed here"))),
        },
        Expr::BinaryOp { left, op, right } => arith(expr, left, op, right),
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            let no_args = match &f.args {
                FunctionArguments::None => true,
                FunctionArguments::List(list) => list.args.is_empty(),
                FunctionArguments::Subquery(_) => false,
            };
            if (name == "now" || name == "current_timestamp") && no_args {
                Ok(Node::Typed(Scalar::Now { offset_micros: 0 }, Ty::Time))
            } else {
                Err(unsupported(expr))
            }
        }
        Expr::Interval(_) => Err(err(
            expr,
            "an interval can only be added to or subtracted from a time, e.g. now() - interval 1 hour",
        )),
        other => Err(unsupported(other)),
    }
}

/// `+ - * /` on numbers, and `time ± interval`.
fn arith(expr: &Expr, left: &Expr, op: &BinaryOperator, right: &Expr) -> Result<Node> {
    let arith_op = match op {
        BinaryOperator::Plus => ArithOp::Add,
        BinaryOperator::Minus => ArithOp::Sub,
        BinaryOperator::Multiply => ArithOp::Mul,
        BinaryOperator::Divide => ArithOp::Div,
        BinaryOperator::And | BinaryOperator::Or => {
            return Err(err(expr, "expected a value, found a condition"));
        }
        other => {
            return Err(err(expr, format!("operator `{other}` is not allowed here")));
        }
    };
    if let Expr::Interval(interval) = right {
        let delta = interval_micros(right, interval)?;
        let sign = match arith_op {
            ArithOp::Add => 1,
            ArithOp::Sub => -1,
            _ => return Err(err(expr, "intervals can only be added or subtracted")),
        };
        let base = match node(left)? {
            Node::Typed(Scalar::Now { offset_micros }, _) => Scalar::Now {
                offset_micros: offset_micros.saturating_add(sign * delta),
            },
            Node::Typed(Scalar::Lit(Lit::Text(t)), _) => match parse_time(&t) {
                Some(time) => Scalar::Lit(Lit::Time(DbTime::from(
                    time.0 + TimeDelta::microseconds(sign * delta),
                ))),
                None => return Err(err(left, format!("{t:?} is not a timestamp"))),
            },
            _ => {
                return Err(err(
                    left,
                    "intervals can only shift now() or a timestamp literal",
                ));
            }
        };
        return Ok(Node::Typed(base, Ty::Time));
    }
    let l = coerce(left, node(left)?, Ty::Number)?;
    let r = coerce(right, node(right)?, Ty::Number)?;
    Ok(Node::Typed(
        Scalar::Arith(arith_op, Box::new(l), Box::new(r)),
        Ty::Number,
    ))
}

/// Resolves `a.b.c[0]` to a column and a JSON path.
fn field(expr: &Expr, idents: &[Ident], chain: &[AccessExpr]) -> Result<Node> {
    let (first, rest) = idents
        .split_first()
        .ok_or_else(|| err(expr, "expected a field name"))?;
    let column = Column::from_name(&first.value).ok_or_else(|| {
        FilterError::at(
            format!(
                "unknown field `{}`; fields are {}",
                first.value,
                Column::NAMES.join(", ")
            ),
            first.span.start,
        )
    })?;
    let mut path: Vec<PathSeg> = rest.iter().map(|i| PathSeg::Key(i.value.clone())).collect();
    for access in chain {
        match access {
            AccessExpr::Dot(Expr::Identifier(i)) => path.push(PathSeg::Key(i.value.clone())),
            AccessExpr::Dot(Expr::CompoundIdentifier(ids)) => {
                path.extend(ids.iter().map(|i| PathSeg::Key(i.value.clone())))
            }
            AccessExpr::Subscript(Subscript::Index { index }) => match index {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => {
                        let i = n
                            .parse::<u32>()
                            .map_err(|_| err(index, "array indexes are whole numbers from 0"))?;
                        path.push(PathSeg::Index(i));
                    }
                    Value::SingleQuotedString(s) => path.push(PathSeg::Key(s.clone())),
                    _ => return Err(err(index, "expected an index or a quoted key")),
                },
                other => return Err(err(other, "expected an index or a quoted key")),
            },
            _ => return Err(err(expr, "unsupported field access")),
        }
    }
    if column.native_type().is_some() && !path.is_empty() {
        return Err(err(
            expr,
            format!("`{}` has no subfields", column.sql_name()),
        ));
    }
    for seg in &path {
        if let PathSeg::Key(k) = seg
            && (k.contains('"') || k.is_empty() || k.chars().any(char::is_control))
        {
            return Err(err(expr, format!("unsupported key {k:?} in field path")));
        }
    }
    Ok(Node::Field(Field { column, path }))
}
