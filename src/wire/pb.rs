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

/// Writes `v` as a varint at the front of `out`, which holds the longest one; returns the bytes
/// written. A fixed-length loop, so no byte needs a bounds check.
#[inline(always)]
pub(crate) fn put_varint_in(out: &mut [u8; 10], mut v: u64) -> usize {
    for (i, byte) in out.iter_mut().enumerate().take(9) {
        if v < 0x80 {
            *byte = v as u8;
            return i + 1;
        }
        *byte = (v as u8) | 0x80;
        v >>= 7;
    }
    out[9] = v as u8;
    10
}

/// Reads a varint at `*pos`, advancing it. At most 10 bytes; the tenth may only be 0 or 1.
#[inline(always)]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> PbResult<u64> {
    // Keys and small values are one byte: decide those without a call.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    match varint_slow(buf, *pos) {
        (_, 0) => Err("invalid varint"),
        (value, len) => {
            *pos += len;
            Ok(value)
        }
    }
}

/// [`get_varint`] with the two- and three-byte cases inline too, for a field that is usually
/// that long (payload protocol ids: 0x7000 and up take three bytes).
#[inline(always)]
pub(crate) fn get_varint_short(buf: &[u8], pos: &mut usize) -> PbResult<u64> {
    if let Some(&[b0, b1, b2]) = buf.get(*pos..).and_then(|rest| rest.first_chunk::<3>()) {
        let low = u64::from(b0 & 0x7f);
        if b0 < 0x80 {
            *pos += 1;
            return Ok(low);
        }
        let mid = low | u64::from(b1 & 0x7f) << 7;
        if b1 < 0x80 {
            *pos += 2;
            return Ok(mid);
        }
        if b2 < 0x80 {
            *pos += 3;
            return Ok(mid | u64::from(b2) << 14);
        }
    }
    get_varint(buf, pos)
}

/// [`get_varint`] for a field usually one to four bytes long (request ids: sequence numbers
/// and the like), decoded inline from one 4-byte load: the four bytes at `pos`, or, near the
/// end of `buf`, its last four shifted so that `pos` comes first and zeros follow the end.
#[inline(always)]
pub(crate) fn get_varint_4(buf: &[u8], pos: &mut usize) -> PbResult<u64> {
    let at = *pos;
    if let Some(start) = buf.len().checked_sub(4).filter(|_| at < buf.len()).map(|last| at.min(last)) {
        let four: [u8; 4] = buf[start..start + 4].try_into().expect("4 bytes");
        let word = u32::from_le_bytes(four) >> (8 * (at - start));
        let ends = !word & 0x8080_8080;
        let len = (ends.trailing_zeros() / 8 + 1) as usize;
        // A varint of at most four bytes, all of them inside `buf` (zeros past its end count
        // as final bytes, hence the length check).
        if ends != 0 && at + len <= buf.len() {
            // Keep the varint's bytes without their continuation bits, then close the gaps.
            let v = word & (ends ^ (ends - 1)) & 0x7f7f_7f7f;
            let v = (v & 0x007f_007f) | ((v & 0x7f00_7f00) >> 1);
            let v = (v & 0x0000_3fff) | ((v & 0x3fff_0000) >> 2);
            *pos = at + len;
            return Ok(u64::from(v));
        }
    }
    get_varint(buf, pos)
}

/// The varint at `buf[pos..]` as (value, length), length 0 if it is invalid or cut short.
/// Kept out of line so the one-byte case stays small; returns in registers.
#[inline(never)]
fn varint_slow(buf: &[u8], pos: usize) -> (u64, usize) {
    let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) else {
        return (0, 0);
    };
    // Up to 8 bytes at once: load the 8 bytes starting at `pos` (or, near the end of `buf`,
    // the last 8, shifted so that `pos` comes first and zeros follow the end).
    if let Some(start) = buf.len().checked_sub(8).map(|last| pos.min(last)) {
        let eight: [u8; 8] = buf[start..start + 8].try_into().expect("8 bytes");
        let word = u64::from_le_bytes(eight) >> (8 * (pos - start));
        // The first byte without a continuation bit ends the varint (zeros past the end of
        // `buf` count as such, hence the length check).
        let ends = !word & 0x8080_8080_8080_8080;
        if ends != 0 {
            let len = (ends.trailing_zeros() / 8 + 1) as usize;
            if len > rest.len() {
                return (0, 0);
            }
            // Keep the varint's bytes without their continuation bits, then close the gaps:
            // byte i brings bits 7i..7i+6, gathered in pairs, quads, then all eight.
            let v = word & (ends ^ (ends - 1)) & 0x7f7f_7f7f_7f7f_7f7f;
            let v = (v & 0x007f_007f_007f_007f) | ((v & 0x7f00_7f00_7f00_7f00) >> 1);
            let v = (v & 0x0000_3fff_0000_3fff) | ((v & 0x3fff_0000_3fff_0000) >> 2);
            let v = (v & 0x0000_0000_0fff_ffff) | ((v & 0x0fff_ffff_0000_0000) >> 4);
            return (v, len);
        }
    }
    varint_in(rest)
}

/// Decodes the varint at the front of `bytes` one byte at a time: (value, length), length 0
/// if invalid or cut short.
#[inline(always)]
fn varint_in(bytes: &[u8]) -> (u64, usize) {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            // The tenth byte holds the 64th bit only.
            if i == 9 && b > 1 {
                return (0, 0);
            }
            return (value, i + 1);
        }
    }
    (0, 0)
}

/// Reads a field key, returning (field number, wire type).
#[inline(always)]
pub(crate) fn get_key(buf: &[u8], pos: &mut usize) -> PbResult<(u32, u8)> {
    split_key(get_varint(buf, pos)?)
}

/// Checks a key read as a varint and splits it into (field number, wire type).
#[inline]
pub(crate) fn split_key(key: u64) -> PbResult<(u32, u8)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_length() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = [0u8; 10];
            let n = put_varint(&mut out, v);
            assert_eq!(n, varint_len(v), "{v}");
            let mut ten = [0u8; 10];
            assert_eq!(put_varint_in(&mut ten, v), n, "{v}");
            assert_eq!(ten[..n], out[..n], "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&out[..n], &mut pos), Ok(v));
            assert_eq!(pos, n);
        }
    }

    #[test]
    fn varints_decode_at_every_distance_from_the_end_of_the_buffer() {
        let mut values = vec![0u64, 1, 127, 128, 300, 0x7001, 123_456_789, u64::MAX];
        values.extend((1..64).map(|bit| (1u64 << bit) - 1));
        values.extend((1..64).map(|bit| 1u64 << bit));
        for v in values {
            let mut enc = [0u8; 10];
            let n = put_varint(&mut enc, v);
            for before in 0..3 {
                for after in 0..12 {
                    // Continuation bytes around the varint: reading past its end would show.
                    let mut buf = vec![0xffu8; before];
                    buf.extend_from_slice(&enc[..n]);
                    buf.extend(std::iter::repeat_n(0xffu8, after));
                    for read in [get_varint, get_varint_short, get_varint_4] {
                        let mut pos = before;
                        assert_eq!(read(&buf, &mut pos), Ok(v), "{v} {before} {after}");
                        assert_eq!(pos, before + n);
                        // Cut short: every proper prefix is invalid.
                        for cut in 0..n {
                            let mut pos = before;
                            let short = &buf[..before + cut];
                            assert!(read(short, &mut pos).is_err(), "{v} cut {cut}");
                            assert_eq!(pos, before);
                        }
                    }
                }
            }
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
        for read in [get_varint_short, get_varint_4] {
            let mut pos = 0;
            assert!(read(&[0xff; 11], &mut pos).is_err());
            assert!(read(&[0x80, 0x80], &mut pos).is_err());
            assert!(read(&over, &mut pos).is_err());
            assert_eq!(pos, 0);
        }
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
