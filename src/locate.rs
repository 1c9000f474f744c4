//! Where a field is in a JSON text: the 1-based line and column of the value
//! at a path like `calls[0].steps[2].send.message` (the syntax of
//! serde_path_to_error and of fixture validation errors), so an error found
//! after parsing still points into the file.

/// Line and column (1-based, in characters) of the value at `path` in `text`;
/// `None` when the path is not there or the text is not JSON.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut scan = Scan {
        bytes: text.as_bytes(),
        at: 0,
        want: path.trim_start_matches('.'),
        found: None,
    };
    scan.value(String::new())?;
    let offset = scan.found?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some((line, column))
}

/// A JSON walk that remembers the offset of one path's value.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    want: &'a str,
    found: Option<usize>,
}

impl Scan<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// Walks one value whose path is `path`.
    fn value(&mut self, path: String) -> Option<()> {
        self.skip_space();
        if self.found.is_none() && path == self.want {
            self.found = Some(self.at);
        }
        match *self.bytes.get(self.at)? {
            b'{' => self.object(&path),
            b'[' => self.array(&path),
            b'"' => self.string().map(|_| ()),
            _ => {
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| !b",}] \t\r\n".contains(b))
                {
                    self.at += 1;
                }
                Some(())
            }
        }
    }

    fn object(&mut self, path: &str) -> Option<()> {
        self.at += 1;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.eat(b':')?;
            let inner = if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            };
            self.value(inner)?;
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    fn array(&mut self, path: &str) -> Option<()> {
        self.at += 1;
        if self.eat(b']').is_some() {
            return Some(());
        }
        for index in 0.. {
            self.value(format!("{path}[{index}]"))?;
            if self.eat(b',').is_none() {
                return self.eat(b']');
            }
        }
        None
    }

    /// A string's text (escapes kept as written: keys are plain names).
    fn string(&mut self) -> Option<String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        self.at = start;
        loop {
            match *self.bytes.get(self.at)? {
                b'\\' => self.at += 2,
                b'"' => break,
                _ => self.at += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        self.at += 1;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"calls\": [\n    {\"method\": \"/A/B\",\n     \"steps\": [\"half_close\", {\"send\": {\"message\": {\"x\": 1}}}]}\n  ]\n}";
        assert_eq!(locate(text, "calls[0].method"), Some((3, 16)));
        assert_eq!(locate(text, "calls[0].steps[0]"), Some((4, 16)));
        assert_eq!(
            locate(text, "calls[0].steps[1].send.message"),
            Some((4, 51))
        );
        assert_eq!(locate(text, "calls[1]"), None);
        assert_eq!(locate("{\"a\": ", "a"), None);
    }
}
