//! Reading TOML tables the way GitLab users write them: keys matched case-insensitively,
//! every value's line known, type errors that name the file, line and key.

use std::fmt;
use std::path::Path;
use toml_edit::{Item, TableLike};

/// A bad input file: which file, which line, what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    /// 1-based; 0 when the problem is not at one place.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// A parsed TOML source with its name, for line lookups and error messages.
pub struct Source<'a> {
    pub file: String,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        Source {
            file: file.display().to_string(),
            text,
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn line_of_item(&self, item: &Item) -> usize {
        item.span().map_or(0, |s| self.line_of(s.start))
    }

    pub fn err(&self, line: usize, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

/// A table with case-insensitive lookups, remembering its path for messages.
#[derive(Clone, Copy)]
pub struct Table<'s, 'd> {
    pub src: &'s Source<'s>,
    pub table: &'d dyn TableLike,
    pub path: &'d str,
    /// Line of the table header (or of its first key).
    pub line: usize,
}

impl<'s, 'd> Table<'s, 'd> {
    /// The item under `key`, matched case-insensitively, with the line of its key.
    pub fn get(&self, key: &str) -> Option<(&'d Item, usize)> {
        for (k, item) in self.table.iter() {
            if k.eq_ignore_ascii_case(key) {
                let line = self
                    .table
                    .get_key_value(k)
                    .and_then(|(key, _)| key.span())
                    .map(|s| self.src.line_of(s.start))
                    .unwrap_or_else(|| self.src.line_of_item(item));
                return Some((item, line));
            }
        }
        None
    }

    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.get(key).map(|(_, l)| l)
    }

    fn type_err(&self, key: &str, line: usize, expected: &str, item: &Item) -> InputError {
        let what = item.type_name();
        self.src.err(
            line,
            format!("{}{key}: expected {expected}, found {what}", self.prefix()),
        )
    }

    fn prefix(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!("{}.", self.path)
        }
    }

    pub fn str(&self, key: &str) -> Result<Option<(&'d str, usize)>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some((item, line)) => match item.as_str() {
                Some(s) => Ok(Some((s, line))),
                None => Err(self.type_err(key, line, "a string", item)),
            },
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some((item, line)) => match item.as_bool() {
                Some(b) => Ok(Some(b)),
                None => Err(self.type_err(key, line, "true or false", item)),
            },
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<(i64, usize)>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some((item, line)) => match item.as_integer() {
                Some(i) => Ok(Some((i, line))),
                None => Err(self.type_err(key, line, "an integer", item)),
            },
        }
    }

    /// A non-negative integer that fits in `u32`.
    pub fn count(&self, key: &str) -> Result<Option<(u32, usize)>, InputError> {
        match self.int(key)? {
            None => Ok(None),
            Some((i, line)) if (0..=u32::MAX as i64).contains(&i) => Ok(Some((i as u32, line))),
            Some((i, line)) => Err(self.src.err(
                line,
                format!(
                    "{}{key} = {i}: expected a whole number from 0 to {}",
                    self.prefix(),
                    u32::MAX
                ),
            )),
        }
    }

    /// A float; an integer literal is accepted and reported as such (`true` in the tuple).
    pub fn float(&self, key: &str) -> Result<Option<(f64, bool, usize)>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some((item, line)) => {
                if let Some(f) = item.as_float() {
                    Ok(Some((f, false, line)))
                } else if let Some(i) = item.as_integer() {
                    Ok(Some((i as f64, true, line)))
                } else {
                    Err(self.type_err(key, line, "a number", item))
                }
            }
        }
    }

    /// An array of strings, each with its line.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<(String, usize)>>, InputError> {
        let Some((item, line)) = self.get(key) else {
            return Ok(None);
        };
        let Some(arr) = item.as_array() else {
            return Err(self.type_err(key, line, "an array of strings", item));
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            let l = v.span().map_or(line, |s| self.src.line_of(s.start));
            match v.as_str() {
                Some(s) => out.push((s.to_string(), l)),
                None => {
                    return Err(self.src.err(
                        l,
                        format!(
                            "{}{key}: expected an array of strings, found {}",
                            self.prefix(),
                            v.type_name()
                        ),
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    /// A sub-table (`[a.b]` or inline).
    pub fn table(&self, key: &str, path: &'d str) -> Result<Option<Table<'s, 'd>>, InputError> {
        let Some((item, line)) = self.get(key) else {
            return Ok(None);
        };
        match item.as_table_like() {
            Some(t) => Ok(Some(Table {
                src: self.src,
                table: t,
                path,
                line,
            })),
            None => Err(self.type_err(key, line, "a table", item)),
        }
    }

    /// An array of tables (`[[a.b]]`).
    pub fn tables(&self, key: &str, path: &'d str) -> Result<Vec<Table<'s, 'd>>, InputError> {
        let Some((item, line)) = self.get(key) else {
            return Ok(Vec::new());
        };
        if let Some(aot) = item.as_array_of_tables() {
            return Ok(aot
                .iter()
                .map(|t| Table {
                    src: self.src,
                    table: t,
                    path,
                    line: t.span().map_or(line, |s| self.src.line_of(s.start)),
                })
                .collect());
        }
        if let Some(arr) = item.as_array() {
            let mut out = Vec::new();
            for v in arr.iter() {
                match v.as_inline_table() {
                    Some(t) => out.push(Table {
                        src: self.src,
                        table: t,
                        path,
                        line: v.span().map_or(line, |s| self.src.line_of(s.start)),
                    }),
                    None => return Err(self.type_err(key, line, "an array of tables", item)),
                }
            }
            return Ok(out);
        }
        Err(self.type_err(key, line, "an array of tables", item))
    }

    /// Keys not in `known` (compared case-insensitively), with their TOML text: kept, unused.
    pub fn others(&self, known: &[&str]) -> Vec<(String, String)> {
        self.table
            .iter()
            .filter(|(k, _)| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.to_string(), v.to_string().trim().to_string()))
            .collect()
    }
}
