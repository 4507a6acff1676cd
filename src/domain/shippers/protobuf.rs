//! Just enough of the protobuf wire format to read OTLP's
//! `ExportLogsServiceRequest` and Loki's `PushRequest` and to write their
//! small answers: fields are iterated in place, strings and nested messages
//! are borrowed slices of the body (nothing is copied until a decoder keeps
//! it), and every length is checked against what is left, so no input can
//! make it read out of bounds or allocate.
//!
//! The messages are not generated from `.proto` files: each decoder matches
//! the field numbers it needs and skips the rest, as protobuf allows.

use std::fmt;

/// Why bytes are not the protobuf message a decoder expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtobufError(pub &'static str);

impl fmt::Display for ProtobufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One field's value, by wire type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// A string, bytes, a nested message or a packed repeated field.
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    pub fn bytes(self) -> Result<&'a [u8], ProtobufError> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(ProtobufError("expected a length-delimited field")),
        }
    }

    pub fn string(self) -> Result<&'a str, ProtobufError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| ProtobufError("a string field is not UTF-8"))
    }

    /// Varint and fixed-width integers alike (fields are read by number, so
    /// a sender using another integer encoding still decodes).
    pub fn integer(self) -> Result<u64, ProtobufError> {
        match self {
            Value::Varint(value) | Value::Fixed64(value) => Ok(value),
            Value::Fixed32(value) => Ok(u64::from(value)),
            Value::Bytes(_) => Err(ProtobufError("expected an integer field")),
        }
    }
}

/// Iterates the fields of one message: `(field number, value)`.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(message: &'a [u8]) -> Fields<'a> {
        Fields { rest: message }
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for (index, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[index + 1..];
                return Ok(value);
            }
        }
        Err(ProtobufError("truncated or overlong varint"))
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], ProtobufError> {
        if length > self.rest.len() {
            return Err(ProtobufError("a field runs past the end of its message"));
        }
        let (taken, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), ProtobufError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|number| *number > 0)
            .ok_or(ProtobufError("invalid field number"))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?
                    .try_into()
                    .map_err(|_| ProtobufError("fixed64"))?,
            )),
            2 => {
                let length = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError("length out of range"))?;
                Value::Bytes(self.take(length)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?
                    .try_into()
                    .map_err(|_| ProtobufError("fixed32"))?,
            )),
            _ => return Err(ProtobufError("unsupported wire type (groups are not used)")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // One error ends the message: what follows cannot be framed.
            self.rest = &[];
        }
        Some(field)
    }
}

/// The values of field `number` in one message, in order (a repeated
/// field's elements, or the one value of a singular field, possibly
/// several times: the last wins, by protobuf's rules).
pub fn values_of(
    message: &[u8],
    number: u32,
) -> impl Iterator<Item = Result<Value<'_>, ProtobufError>> {
    Fields::new(message).filter_map(move |field| match field {
        Ok((found, value)) if found == number => Some(Ok(value)),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

pub fn put_bytes_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_skips_nothing() {
        let mut nested = Vec::new();
        put_bytes_field(&mut nested, 1, b"hello");
        let mut message = Vec::new();
        put_varint_field(&mut message, 2, 300);
        put_bytes_field(&mut message, 15, &nested);
        message.extend_from_slice(&[(3 << 3) | 1, 1, 0, 0, 0, 0, 0, 0, 0]);
        message.extend_from_slice(&[(4 << 3) | 5, 7, 0, 0, 0]);
        let fields: Vec<_> = Fields::new(&message).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            fields,
            vec![
                (2, Value::Varint(300)),
                (15, Value::Bytes(&nested)),
                (3, Value::Fixed64(1)),
                (4, Value::Fixed32(7)),
            ]
        );
        let inner: Vec<_> = Fields::new(&nested).collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].1.string(), Ok("hello"));
    }

    #[test]
    fn refuses_truncated_and_hostile_input() {
        for bad in [
            &[0x0a, 5, b'a'][..], // length past the end
            &[0x08, 0x80],        // truncated varint
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // 11-byte varint
            &[0x0b],              // start group
            &[0x00, 0x01],        // field number 0
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // 4 GiB length
        ] {
            let result: Result<Vec<_>, _> = Fields::new(bad).collect();
            assert!(result.is_err(), "{bad:?}");
        }
        assert!(Value::Bytes(&[0xff]).string().is_err());
    }
}
