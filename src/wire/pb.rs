//! The few protobuf wire primitives the hand-written `Frame` codec needs.
//! Semantics follow the prost runtime so both produce and accept the same bytes.

pub(crate) const WT_VARINT: u8 = 0;
pub(crate) const WT_FIXED64: u8 = 1;
pub(crate) const WT_LEN: u8 = 2;
pub(crate) const WT_START_GROUP: u8 = 3;
pub(crate) const WT_END_GROUP: u8 = 4;
pub(crate) const WT_FIXED32: u8 = 5;

/// The recursion limit prost applies (groups are the only nesting a Frame can contain).
const RECURSION_LIMIT: u32 = 100;

pub(crate) type PbResult<T> = Result<T, &'static str>;

/// Bytes needed to encode `v` as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Writes `v` as a varint at the front of `out`; returns the bytes written.
/// `out` must hold at least `varint_len(v)` bytes.
#[inline]
pub(crate) fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Reads a varint at `*pos`, advancing it. At most 10 bytes; the tenth may only be 0 or 1.
#[inline(always)]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> PbResult<u64> {
    // Keys and small values are one byte: decide those without a loop.
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Ok(u64::from(b))
        }
        _ => get_varint_slow(buf, pos),
    }
}

/// The general varint loop, kept out of line so the one-byte case stays small.
#[inline(never)]
fn get_varint_slow(buf: &[u8], pos: &mut usize) -> PbResult<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos + i) else {
            return Err("invalid varint");
        };
        if i == 9 && b > 1 {
            return Err("invalid varint");
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err("invalid varint")
}

/// Reads a field key, returning (field number, wire type).
#[inline(always)]
pub(crate) fn get_key(buf: &[u8], pos: &mut usize) -> PbResult<(u32, u8)> {
    let key = get_varint(buf, pos)?;
    if key > u64::from(u32::MAX) {
        return Err("invalid key value");
    }
    let wire_type = (key & 7) as u8;
    if wire_type > WT_FIXED32 {
        return Err("invalid wire type value");
    }
    let field = (key >> 3) as u32;
    if field == 0 {
        return Err("invalid tag value: 0");
    }
    Ok((field, wire_type))
}

/// Reads a length-delimited field's bytes.
#[inline(always)]
pub(crate) fn get_len_delimited<'a>(buf: &'a [u8], pos: &mut usize) -> PbResult<&'a [u8]> {
    let len = get_varint(buf, pos)?;
    let remaining = (buf.len() - *pos) as u64;
    if len > remaining {
        return Err("buffer underflow");
    }
    let start = *pos;
    *pos += len as usize;
    Ok(&buf[start..*pos])
}

/// Skips the value of an unknown field of `wire_type` (groups included, depth-limited).
pub(crate) fn skip_field(buf: &[u8], pos: &mut usize, field: u32, wire_type: u8) -> PbResult<()> {
    // Group nesting is tracked as a stack of open field numbers, bounded by the recursion limit.
    let mut open: [u32; RECURSION_LIMIT as usize] = [0; RECURSION_LIMIT as usize];
    let mut depth = 0usize;
    let (mut field, mut wire_type) = (field, wire_type);
    loop {
        match wire_type {
            WT_VARINT => {
                get_varint(buf, pos)?;
            }
            WT_FIXED64 => advance(buf, pos, 8)?,
            WT_FIXED32 => advance(buf, pos, 4)?,
            WT_LEN => {
                get_len_delimited(buf, pos)?;
            }
            WT_START_GROUP => {
                if depth == open.len() {
                    return Err("recursion limit reached");
                }
                open[depth] = field;
                depth += 1;
            }
            WT_END_GROUP => {
                if depth == 0 || open[depth - 1] != field {
                    return Err("unexpected end group tag");
                }
                depth -= 1;
            }
            _ => return Err("invalid wire type value"),
        }
        if depth == 0 {
            return Ok(());
        }
        (field, wire_type) = get_key(buf, pos)?;
    }
}

#[inline]
fn advance(buf: &[u8], pos: &mut usize, n: usize) -> PbResult<()> {
    if buf.len() - *pos < n {
        return Err("buffer underflow");
    }
    *pos += n;
    Ok(())
}

/// Writes a field key for fields 1..=15 (one byte).
#[inline]
pub(crate) fn key_byte(field: u32, wire_type: u8) -> u8 {
    debug_assert!((1..=15).contains(&field));
    ((field << 3) as u8) | wire_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_length() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = [0u8; 10];
            let n = put_varint(&mut out, v);
            assert_eq!(n, varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&out[..n], &mut pos), Ok(v));
            assert_eq!(pos, n);
        }
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        let mut pos = 0;
        assert!(get_varint(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        assert!(get_varint(&[0x80, 0x80], &mut pos).is_err());
        let mut pos = 0;
        // Tenth byte 2 overflows 64 bits.
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(get_varint(&over, &mut pos).is_err());
    }

    #[test]
    fn skip_nested_groups_and_reject_mismatched_end() {
        // field 20 start group, field 21 varint 5, field 20 end group.
        let buf = [0xa3, 0x01, 0xa8, 0x01, 0x05, 0xa4, 0x01];
        let mut pos = 0;
        let (f, wt) = get_key(&buf, &mut pos).unwrap();
        assert_eq!((f, wt), (20, WT_START_GROUP));
        skip_field(&buf, &mut pos, f, wt).unwrap();
        assert_eq!(pos, buf.len());

        let bad = [0xa3, 0x01, 0xac, 0x01];
        let mut pos = 0;
        let (f, wt) = get_key(&bad, &mut pos).unwrap();
        assert!(skip_field(&bad, &mut pos, f, wt).is_err());
    }
}
