//! Maps paths inside a YAML document (`upstreams.web.backends[1].weight`) to
//! the line and column where they stand, so that validation errors found
//! after deserialisation can still point at the file.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// Positions of every key and value of a YAML document, by dotted path.
#[derive(Default, Debug)]
pub struct Locator {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
    top_keys: Vec<String>,
}

impl Locator {
    /// Index `text`. A YAML syntax error leaves a partial index; the caller
    /// reports the syntax error through serde_yaml.
    pub fn new(text: &str) -> Self {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        b.loc
    }

    /// Where the key that ends `path` stands, else where its value stands.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// Where the value at `path` stands, else where its key stands.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
    }

    /// Where the value at `path` stands or, when the file has no such path
    /// (a default, or a path spelled differently), where its nearest
    /// enclosing key or item does: an error always points into the file.
    pub fn nearest(&self, path: &str) -> Option<Pos> {
        if let Some(pos) = self.value(path) {
            return Some(pos);
        }
        let mut p = path;
        loop {
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
            if let Some(pos) = self.key(p) {
                return Some(pos);
            }
        }
    }

    /// The keys of the top-level mapping, in file order.
    pub fn top_keys(&self) -> &[String] {
        &self.top_keys
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    loc: Locator,
}

impl Builder {
    /// The path of the value about to be read in the current container.
    fn value_path(&self) -> Option<String> {
        match self.stack.last()? {
            Frame::Map { path, key: Some(k) } => Some(join(path, k)),
            Frame::Map { key: None, .. } => None,
            Frame::Seq { path, index } => Some(format!("{path}[{index}]")),
        }
    }

    /// A value at the current position is complete: move the container on.
    fn advance(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(v, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { path, .. }) = self.stack.last() {
                        let p = join(path, &v);
                        if self.stack.len() == 1 {
                            self.loc.top_keys.push(v.clone());
                        }
                        self.loc.keys.insert(p, mark.into());
                    }
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(v);
                    }
                } else {
                    if let Some(p) = self.value_path() {
                        self.loc.values.insert(p, mark.into());
                    }
                    self.advance();
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.value_path() {
                    self.loc.values.insert(p, mark.into());
                }
                self.advance();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    String::new()
                } else {
                    // A complex mapping key has no path of its own.
                    self.value_path().unwrap_or_default()
                };
                if !path.is_empty() {
                    self.loc.values.insert(path.clone(), mark.into());
                }
                if matches!(ev, Event::MappingStart(..)) {
                    self.stack.push(Frame::Map { path, key: None });
                } else {
                    self.stack.push(Frame::Seq { path, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.advance();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod nearest_tests {
    use super::*;

    #[test]
    fn falls_back_to_the_enclosing_item() {
        let loc = Locator::new("upstreams:\n  web:\n    backends:\n      - address: a:1\n");
        assert_eq!(
            loc.nearest("upstreams.web.backends[0].address")
                .map(|p| p.line),
            Some(4)
        );
        assert_eq!(
            loc.nearest("upstreams.web.backends[0].wieght")
                .map(|p| p.line),
            Some(4)
        );
        assert_eq!(
            loc.nearest("upstreams.web.retries").map(|p| p.line),
            Some(2)
        );
        assert_eq!(loc.nearest("nothing.here"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_values() {
        let text = "a: 1\nup:\n  web:\n    backends:\n      - address: x\n        weight: 0\n";
        let loc = Locator::new(text);
        assert_eq!(loc.key("a"), Some(Pos { line: 1, col: 1 }));
        assert_eq!(
            loc.value("up.web.backends[0].weight"),
            Some(Pos { line: 6, col: 17 })
        );
        assert_eq!(
            loc.key("up.web.backends[0].address"),
            Some(Pos { line: 5, col: 9 })
        );
        assert_eq!(loc.top_keys(), &["a".to_string(), "up".to_string()]);
    }
}
