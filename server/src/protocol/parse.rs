//! Request parsing: finds complete requests in a buffer without copying them.

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// Parses a decimal integer (as RESP headers and numeric arguments are written).
pub fn number(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses one request (a RESP array of bulk strings, or an inline command line) without
/// copying: fills `args` with each argument's byte range in `buf` and returns the bytes
/// used, `None` if more bytes are needed, or why the input is not RESP (after which the
/// connection cannot be resynchronised).
pub fn parse_ranges(
    buf: &[u8],
    max_request: usize,
    args: &mut Vec<(usize, usize)>,
) -> Result<Option<usize>, String> {
    args.clear();
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        // Inline command: one line of space-separated words (what telnet users type).
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > 64 * 1024 {
                Err("too big inline request".into())
            } else {
                Ok(None)
            };
        };
        let mut i = 0;
        while i < end {
            while i < end && buf[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < end && !buf[i].is_ascii_whitespace() {
                i += 1;
            }
            if i > start {
                args.push((start, i));
            }
        }
        return Ok(Some(end + 1));
    }
    let Some((head, mut at)) = line(&buf[1..]) else {
        return Ok(None);
    };
    at += 1;
    let count = match number(head) {
        Some(n) if (0..=1024 * 1024).contains(&n) => n as usize,
        _ => return Err("invalid multibulk length".into()),
    };
    for _ in 0..count {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&c) => return Err(format!("expected '$', got '{}'", c as char)),
        }
        let Some((len, used)) = line(&buf[at + 1..]) else {
            return Ok(None);
        };
        let len = match number(len) {
            Some(n) if n >= 0 && (n as usize) <= max_request => n as usize,
            _ => return Err("invalid bulk length".into()),
        };
        at += 1 + used;
        if buf.len() < at + len + 2 {
            return Ok(None);
        }
        if &buf[at + len..at + len + 2] != b"\r\n" {
            return Err("bulk string not terminated by CRLF".into());
        }
        args.push((at, at + len));
        at += len + 2;
    }
    Ok(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Result<Option<(Vec<Vec<u8>>, usize)>, String>;

    fn parse(buf: &[u8], max: usize) -> Parsed {
        let mut r = Vec::new();
        Ok(parse_ranges(buf, max, &mut r)?
            .map(|n| (r.iter().map(|&(a, b)| buf[a..b].to_vec()).collect(), n)))
    }

    #[test]
    fn parses_resp_inline_and_garbage() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(
            parse(req, 100),
            Ok(Some((vec![b"GET".to_vec(), b"k".to_vec()], req.len())))
        );
        for cut in 1..req.len() {
            assert_eq!(parse(&req[..cut], 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse(b"PING hello\r\nrest", 100),
            Ok(Some((vec![b"PING".to_vec(), b"hello".to_vec()], 12)))
        );
        assert!(parse(b"*x\r\n", 100).is_err());
        assert!(parse(b"*1\r\n+OK\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$-5\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$200\r\n", 100).is_err());
        assert!(parse(b"*1\r\n$1\r\nab\r\n", 100).is_err());
    }
}
