//! The Prometheus text format as the tests read it: one parser for every
//! scrape (contour's `/metrics`, Envoy's admin `/stats/prometheus`, upstream
//! controllers' metrics).

/// One parsed sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// A scrape of a Prometheus text endpoint.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text format (comments skipped; unparsable lines ignored).
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            samples: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The sum of the samples named `name` whose labels pass `keep`.
    pub fn sum(&self, name: &str, keep: impl Fn(&dyn Fn(&str) -> Option<String>) -> bool) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                let get = |k: &str| {
                    s.labels
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                };
                keep(&get)
            })
            .map(|s| s.value)
            .sum()
    }

    /// Every sample, in the order scraped.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Whether any sample is named `name` with label `key` = `value`.
    pub fn has(&self, name: &str, key: &str, value: &str) -> bool {
        self.samples
            .iter()
            .any(|s| s.name == name && s.labels.iter().any(|(k, v)| k == key && v == value))
    }

    /// The value of the sample written as `sample` (a name with an optional
    /// `{k="v",...}` label set, matched whatever the labels' order).
    pub fn value(&self, sample: &str) -> Option<f64> {
        let want = parse_line(&format!("{sample} 0"))?;
        let mut want_labels = want.labels;
        want_labels.sort();
        self.samples
            .iter()
            .find(|s| {
                let mut labels = s.labels.clone();
                labels.sort();
                s.name == want.name && labels == want_labels
            })
            .map(|s| s.value)
    }

    /// The sum of every sample named `name`, whatever its labels.
    pub fn total(&self, name: &str) -> f64 {
        self.sum(name, |_| true)
    }
}

/// `name{k="v",...} value` → a sample.
pub fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t'])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i + 1);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // A quoted value with `\\`, `\"` and `\n` escapes.
                    if chars.next().map(|(_, q)| q) != Some('"') {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        }
        rest = &body[end?..];
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_labels_escapes_and_comments() {
        let text = concat!(
            "# HELP x_total y\n",
            "# TYPE x_total counter\n",
            r#"x_total{kind="a",path="q\"\\n"} 3"#,
            "\n",
            r#"x_total{path="p",kind="b"} 4.5"#,
            "\nup 1\nbroken{\n",
        );
        let m = Metrics::parse(text);
        assert_eq!(m.total("x_total"), 7.5);
        assert_eq!(m.value("up"), Some(1.0));
        assert_eq!(
            m.value(r#"x_total{kind="b",path="p"}"#),
            Some(4.5),
            "any label order"
        );
        assert_eq!(m.value(r#"x_total{kind="a",path="q\"\\n"}"#), Some(3.0));
        assert_eq!(m.value(r#"x_total{kind="b"}"#), None, "the whole label set");
        assert!(m.has("x_total", "path", "q\"\\n"));
        assert_eq!(m.value(r#"up{a="b"}"#), None);
    }
}
