//! A memory budget for decoding one status or callback body: what the decoded result may
//! allocate, as a multiple of the body's size. A body of a million one-letter words would
//! otherwise take over ten times its size (each word is a struct of about a hundred bytes); with
//! the budget, decoding stops with an error naming the limit before it allocates past it.
//!
//! The charges are upper bounds of what each decoded piece allocates (a vector's growth slack
//! and the allocator's rounding included), so a body that decodes never took more than
//! [`DECODE_RATIO`] times its size (plus [`DECODE_FLOOR`]).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// At most this many times its size a status or callback body takes in memory, decoded.
pub const DECODE_RATIO: usize = 4;

/// The budget every body gets whatever its size, for the small fixed parts of a result.
pub const DECODE_FLOOR: usize = 64 * 1024;

thread_local! {
    /// What the decode running on this thread may still allocate; `None` outside one.
    static LEFT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `decode` on this thread with the budget of a body of `body_len` bytes.
pub(crate) fn within<T>(body_len: usize, decode: impl FnOnce() -> T) -> T {
    let budget = body_len.saturating_mul(DECODE_RATIO).saturating_add(DECODE_FLOOR);
    let outer = LEFT.replace(Some(budget));
    let decoded = decode();
    LEFT.set(outer);
    decoded
}

/// Takes `bytes` from the budget, or fails the decode when they are not there.
pub(crate) fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    LEFT.with(|left| match left.get() {
        None => Ok(()),
        Some(rest) if rest >= bytes => {
            left.set(Some(rest - bytes));
            Ok(())
        }
        Some(_) => Err(E::custom(format_args!(
            "decoding this answer would take more than {DECODE_RATIO}× its size in memory; refused"
        ))),
    })
}

/// What a heap string of `len` bytes costs, the allocator's rounding and header included.
pub(crate) fn heap(len: usize) -> usize {
    if len == 0 { 0 } else { len.div_ceil(16) * 16 + 16 }
}

/// Pushes `item` onto `items`, charging the growth of the vector (when it is full, it doubles:
/// the new slots are charged before they are reserved) and what the item holds on the heap.
pub(crate) fn push<T, E: de::Error>(items: &mut Vec<T>, item: T, heap: usize) -> Result<(), E> {
    if items.len() == items.capacity() {
        let more = items.capacity().max(4);
        charge::<E>(more.saturating_mul(std::mem::size_of::<T>()))?;
        items.reserve_exact(more);
    }
    charge::<E>(heap)?;
    items.push(item);
    Ok(())
}

/// A JSON value decoded within the budget: each node charged as it is made.
#[derive(Debug)]
pub(crate) struct Charged(pub(crate) Value);

impl<'de> Deserialize<'de> for Charged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ChargedVisitor).map(Charged)
    }
}

struct ChargedVisitor;

impl<'de> Visitor<'de> for ChargedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        charge(heap(v.len()))?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        charge(heap(v.len()))?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Charged::deserialize(deserializer).map(|c| c.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Charged>()? {
            push::<_, A::Error>(&mut items, item.0, 0)?;
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        // A map entry: its key, its value and the tree's node around them.
        let entry = std::mem::size_of::<String>() + 2 * std::mem::size_of::<Value>() + 32;
        loop {
            charge::<A::Error>(entry)?;
            let Some(key) = map.next_key::<String>()? else {
                return Ok(Value::Object(object));
            };
            charge::<A::Error>(heap(key.len()))?;
            let value = map.next_value::<Charged>()?;
            object.insert(key, value.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_past_its_budget_fails_and_none_outside_one() {
        let big = format!("[{}0]", "0,".repeat(100_000));
        let unbounded: Charged = serde_json::from_str(&big).unwrap();
        assert_eq!(unbounded.0.as_array().unwrap().len(), 100_001);
        let refused = within(big.len(), || serde_json::from_str::<Charged>(&big));
        assert!(refused.unwrap_err().to_string().contains("4× its size"));
        let fine = r#"{"a": [1, "two", {"three": null}]}"#;
        let decoded = within(fine.len(), || serde_json::from_str::<Charged>(fine)).unwrap();
        assert_eq!(decoded.0["a"][1], "two");
    }
}
