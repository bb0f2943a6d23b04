//! Moving a script's `KEYS[n]` and `ARGV[n]` to other positions, for a part of a combined
//! script (see [`crate::batch`]): a part that reads only literal positions reads its slice of
//! the combined call's KEYS and ARGV in place, where handing it tables of its own would cost
//! the server two table allocations per part and run.

/// Where a part's KEYS (or ARGV) sit in the combined call's: after `from` others, `len` of them.
#[derive(Clone, Copy)]
pub(crate) struct Slice {
    pub(crate) from: usize,
    pub(crate) len: usize,
}

/// `lua` with every `KEYS[n]` read as `KEYS[n + keys.from]` and every `ARGV[n]` as
/// `ARGV[n + args.from]`, or `None` when the script uses KEYS or ARGV any other way (as a
/// whole table, say, or with a computed index) or reads a position past its own slice (which
/// must read nil, not the next part's value): such a script needs tables of its own.
/// Comments and string literals are copied as they are.
pub(crate) fn rebase(lua: &str, keys: Slice, args: Slice) -> Option<String> {
    let bytes = lua.as_bytes();
    let mut out = String::with_capacity(lua.len() + 16);
    // `copied`: where the next verbatim run starts.
    let mut copied = 0;
    for (start, end) in words(lua)? {
        // `t.KEYS` and `t:KEYS` are fields of some table, not the globals.
        let field = start > 0 && matches!(bytes[start - 1], b'.' | b':');
        let slice = match &lua[start..end] {
            "KEYS" if !field => keys,
            "ARGV" if !field => args,
            _ => continue,
        };
        let (index, after) = literal_index(bytes, end)?;
        if index == 0 || index > slice.len {
            return None;
        }
        out.push_str(&lua[copied..end]);
        out.push('[');
        out.push_str(&(index + slice.from).to_string());
        out.push(']');
        copied = after;
    }
    out.push_str(&lua[copied..]);
    Some(out)
}

/// A body that runs to its end and returns there: what runs before its `return`, and the
/// expressions it returns.
pub(crate) struct Ending<'a> {
    pub(crate) before: &'a str,
    pub(crate) values: &'a str,
    /// At most how many locals the body declares (a combined script runs it inside its own
    /// function, where Lua allows 200 at once).
    pub(crate) locals: usize,
}

/// `lua` split at its `return`, when that is its only one and ends the body itself (not a
/// nested block or function) with at least one expression. Such a body can run inline in a
/// `do ... end` block of a combined script, its values assigned where it would return them:
/// calling it as a function of its own cost the server a closure and a call per part and run.
pub(crate) fn ending(lua: &str) -> Option<Ending<'_>> {
    let (mut depth, mut at, mut locals) = (0usize, None, 0);
    for (start, end) in words(lua)? {
        match &lua[start..end] {
            // `while .. do` and `for .. do` open their block with the `do`.
            "function" | "if" | "do" | "repeat" => depth += 1,
            "end" | "until" => depth = depth.checked_sub(1)?,
            "return" if at.is_none() && depth == 0 => at = Some((start, end)),
            "return" => return None,
            "local" => locals += declared(&lua[end..]),
            _ => {}
        }
    }
    let (start, end) = at?;
    let values = lua[end..].trim().trim_end_matches(';').trim_end();
    (depth == 0 && !values.is_empty()).then_some(Ending { before: &lua[..start], values, locals })
}

/// How many names the `local` statement whose text follows declares: one for a local
/// function, else its names up to the `=` or the line's end (an overcount is harmless).
fn declared(rest: &str) -> usize {
    let rest = rest.trim_start();
    if rest.starts_with("function") {
        return 1;
    }
    let names = rest.find(['=', '\n', ';']).map_or(rest, |n| &rest[..n]);
    1 + names.matches(',').count()
}

/// Where the words (names and keywords) of `lua` are, outside its comments and strings; `None`
/// when a string or a long comment is left open.
fn words(lua: &str) -> Option<Vec<(usize, usize)>> {
    let bytes = lua.as_bytes();
    let (mut i, mut found) = (0, Vec::new());
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = match long_bracket(bytes, i + 2) {
                    Some(level) => close_long_bracket(bytes, i + 2, level)?,
                    None => bytes[i..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |n| i + n),
                };
            }
            b'\'' | b'"' => i = close_quote(bytes, i)?,
            b'[' => {
                i = match long_bracket(bytes, i) {
                    Some(level) => close_long_bracket(bytes, i, level)?,
                    None => i + 1,
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = i + bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
                found.push((i, end));
                i = end;
            }
            // A number's digits and exponent (`1e5`) are not a word.
            b if b.is_ascii_digit() => i += bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count(),
            _ => i += 1,
        }
    }
    Some(found)
}

/// `[digits]` right at `at`: the index and where it ends.
fn literal_index(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let digits = bytes[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    let close = at + 1 + digits;
    if digits == 0 || bytes.get(close) != Some(&b']') {
        return None;
    }
    let index = std::str::from_utf8(&bytes[at + 1..close]).ok()?.parse().ok()?;
    Some((index, close + 1))
}

/// The level of a long bracket (`[[`, `[=[`, ..) opening at `at`.
fn long_bracket(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let level = bytes[at + 1..].iter().take_while(|b| **b == b'=').count();
    (bytes.get(at + 1 + level) == Some(&b'[')).then_some(level)
}

/// Just past the long bracket of `level` that closes the one opening at `at`.
fn close_long_bracket(bytes: &[u8], at: usize, level: usize) -> Option<usize> {
    let close: Vec<u8> = std::iter::once(b']').chain(std::iter::repeat_n(b'=', level)).chain([b']']).collect();
    let body = at + level + 2;
    let n = bytes[body..].windows(close.len()).position(|w| w == close)?;
    Some(body + n + close.len())
}

/// Just past the quoted string opening at `at` (escapes skipped).
fn close_quote(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Slice, ending, rebase};

    const WIDE: Slice = Slice { from: 5, len: 20 };

    #[test]
    fn literal_positions_move_by_the_offsets() {
        let lua = "local v = redis.call('GET', KEYS[1]) return {KEYS[2], ARGV[1], ARGV[10]}";
        let (keys, args) = (Slice { from: 2, len: 2 }, Slice { from: 3, len: 10 });
        assert_eq!(
            rebase(lua, keys, args).as_deref(),
            Some("local v = redis.call('GET', KEYS[3]) return {KEYS[4], ARGV[4], ARGV[13]}")
        );
        let unmoved = (Slice { from: 0, len: 2 }, Slice { from: 0, len: 10 });
        assert_eq!(rebase(lua, unmoved.0, unmoved.1).as_deref(), Some(lua), "no offsets, no change");
    }

    #[test]
    fn a_position_past_the_parts_own_slice_is_refused() {
        // With tables of its own, `ARGV[2]` reads nil when the part has one argument; moved,
        // it would read the next part's first one.
        let lua = "if ARGV[2] then return ARGV[2] end return KEYS[1]";
        assert_eq!(rebase(lua, Slice { from: 0, len: 1 }, Slice { from: 0, len: 1 }), None);
        assert_eq!(rebase("return KEYS[0]", WIDE, WIDE), None, "Lua tables start at 1");
        assert!(rebase(lua, Slice { from: 0, len: 1 }, Slice { from: 0, len: 2 }).is_some());
    }

    #[test]
    fn other_uses_of_the_tables_are_refused() {
        for lua in
            ["return #KEYS", "return KEYS", "return ARGV[i]", "return ARGV [1]", "for _, k in ipairs(KEYS) do end"]
        {
            assert_eq!(rebase(lua, WIDE, WIDE), None, "{lua}");
        }
    }

    #[test]
    fn comments_strings_and_fields_are_left_alone() {
        let lua = "-- KEYS[1] in a comment\n--[==[ ARGV ]==] local s = 'KEYS[1]' .. \"ARGV\\\"[2]\" .. [[KEYS]]\n\
                   local t = {} t.KEYS = 1 local MYKEYS = 2 return KEYS[1]";
        let expected = lua.replace("return KEYS[1]", "return KEYS[6]");
        assert_eq!(rebase(lua, WIDE, WIDE), Some(expected));
    }

    #[test]
    fn unterminated_strings_and_comments_are_refused() {
        assert_eq!(rebase("return 'KEYS[1]", WIDE, WIDE), None);
        assert_eq!(rebase("--[[ KEYS[1]", WIDE, WIDE), None);
    }

    #[test]
    fn a_body_returning_only_at_its_end_splits_there() {
        let lua = "local a, b = 1, 2\nlocal function f() local x = 1 end\nif a then b = 3 end\n\
                   for i = 1, 2 do a = a + i end\nwhile false do end\nrepeat a = a until true\n\
                   -- return 0\nlocal s = 'return'\nreturn a, f(), s;\n";
        let split = ending(lua).expect("one return, at the end");
        assert!(split.before.ends_with("local s = 'return'\n"), "{:?}", split.before);
        assert_eq!(split.values, "a, f(), s");
        assert_eq!(split.locals, 5, "a, b, f, x and s (an overcount is allowed)");
    }

    #[test]
    fn a_body_returning_elsewhere_or_nothing_does_not_split() {
        for lua in [
            "if x then return 1 end return 2",
            "if x then return 1 end",
            "local f = function() return 1 end return f()",
            "local x = 1",
            "return",
            "return;",
            "end return 1",
            "return 'unterminated",
        ] {
            assert!(ending(lua).is_none(), "{lua}");
        }
        assert_eq!(ending("return 1e5, 0x1f").map(|e| e.values), Some("1e5, 0x1f"), "numbers are not words");
    }
}
