//! JSON integers that do not fit in 64 bits.
//!
//! serde_json reads an integer literal beyond `u64`/`i64` (an order id such
//! as `123456789012345678901234`) as a float, silently dropping digits, and
//! Herald would store the rounded value. Rather than keep a wrong number,
//! a body holding one is refused with the path of the field
//! (`events[0].metadata.order_id`), and the client can send it as a string.
//! (Keeping such numbers exact would mean serde_json's
//! `arbitrary_precision` everywhere, a cost on every value of every
//! request for a case that is almost always a mistake.)
//!
//! [`inexact_integer`] is a single pass over the bytes that tracks only
//! where it is (object keys, array indexes); it first looks for any run of
//! 19 or more digits, so a body without one costs one tight loop.

/// A JSON path (`a.b[2]`) and the literal of the first integer in `json`
/// that does not fit in an `i64` or `u64`; `None` when there is none, or
/// when the text is not well-formed JSON (the parser reports that).
pub fn inexact_integer(json: &[u8]) -> Option<(String, String)> {
    if !has_long_digit_run(json) {
        return None;
    }
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'{' => frames.push(Frame::Object {
                key: None,
                expecting_key: true,
            }),
            b'[' => frames.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                frames.pop();
            }
            b',' => match frames.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                None => return None,
            },
            b':' => {
                if let Some(Frame::Object { expecting_key, .. }) = frames.last_mut() {
                    *expecting_key = false;
                }
            }
            b'"' => {
                let end = string_end(json, i)?;
                if let Some(Frame::Object {
                    key,
                    expecting_key: true,
                }) = frames.last_mut()
                {
                    *key = Some(String::from_utf8_lossy(&json[i + 1..end]).into_owned());
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = json[i..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(json.len(), |n| i + n);
                let literal = std::str::from_utf8(&json[i..end]).ok()?;
                let integer = !literal.contains(['.', 'e', 'E']);
                let fits = literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
                if integer && !fits {
                    return Some((path_of(&frames), literal.to_string()));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

enum Frame {
    Object {
        key: Option<String>,
        expecting_key: bool,
    },
    Array {
        index: usize,
    },
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn path_of(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Whether `json` has 19 or more digits in a row anywhere (the shortest
/// integer that can overflow an `i64` has 19).
fn has_long_digit_run(json: &[u8]) -> bool {
    let mut run = 0;
    for byte in json {
        if byte.is_ascii_digit() {
            run += 1;
            if run >= 19 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_integers_past_64_bits_with_their_path() {
        let body = br#"{"events": [{"id": "a"}, {"metadata": {"n": 18446744073709551615,
            "order_id": 123456789012345678901234, "s": "99999999999999999999999"}}]}"#;
        assert_eq!(
            inexact_integer(body),
            Some((
                "events[1].metadata.order_id".into(),
                "123456789012345678901234".into()
            ))
        );
        assert_eq!(
            inexact_integer(br#"[-9223372036854775809]"#),
            Some(("[0]".into(), "-9223372036854775809".into()))
        );
    }

    #[test]
    fn leaves_everything_that_fits_alone() {
        for body in [
            &br#"{"a": 18446744073709551615, "b": -9223372036854775808}"#[..],
            br#"{"x": 1.5e300, "y": 12345678901234567890123.5, "z": "123456789012345678901234"}"#,
            br#"{"k\"q": [1, 2, {"deep": 3}]}"#,
        ] {
            let found = inexact_integer(body);
            assert!(
                found.is_none(),
                "{found:?} in {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
