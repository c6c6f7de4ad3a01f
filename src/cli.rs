//! Command-line parsing: `bulb [-c FILE] [-t [--diff OLD] [--format text|json]] [-d] [-u]
//! [--version] [--help]`.

/// Parsed flags.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cli {
    /// `-c FILE`.
    pub conf: Option<String>,
    /// `-t`: validate and exit.
    pub test: bool,
    /// `-d`: daemonize.
    pub daemon: bool,
    /// `-u`: take sockets over from a running bulb.
    pub upgrade: bool,
    /// `--version`.
    pub version: bool,
    /// `--help`.
    pub help: bool,
    /// `--diff OLD`: with `-t`, what a reload from OLD would change.
    pub diff: Option<String>,
    /// `--format json`: machine-readable `--diff`.
    pub json: bool,
}

/// Usage text.
pub const USAGE: &str = "\
usage: bulb [-c FILE] [-t [--diff OLD.yaml] [--format text|json]] [-d] [-u] [--version] [--help]

  -c, --conf FILE   configuration file (default: NODES mode when $NODES is set,
                    else /etc/bulb/bulb.yaml)
  -t, --test        validate the configuration and exit
      --diff OLD    with -t: print what a reload from OLD to this file changes
      --format json with --diff: machine-readable output
  -d, --daemon      run in the background (pid_file, error_log apply)
  -u, --upgrade     take the listening sockets over from a running bulb
      --version     print the version
  -h, --help        print this help

signals: HUP reload, TERM graceful stop, INT fast stop, QUIT hand sockets to `bulb -u`
";

/// A command line bulb does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag that needs a value had none (or a wrong one).
    #[error("{0} needs a value (a file name; for --format: text or json)")]
    MissingValue(String),
    /// An unknown argument.
    #[error("unknown argument `{0}`")]
    Unknown(String),
}

/// Parse arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, CliError> {
    let mut cli = Cli::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--conf" => match it.next() {
                Some(f) if !f.is_empty() => cli.conf = Some(f),
                _ => return Err(CliError::MissingValue(a)),
            },
            "-t" | "--test" => cli.test = true,
            "-d" | "--daemon" => cli.daemon = true,
            "-u" | "--upgrade" => cli.upgrade = true,
            "-V" | "--version" => cli.version = true,
            "-h" | "--help" => cli.help = true,
            "--diff" => match it.next() {
                Some(f) if !f.is_empty() => cli.diff = Some(f),
                _ => return Err(CliError::MissingValue(a)),
            },
            "--format" => match it.next().as_deref() {
                Some("json") => cli.json = true,
                Some("text") => cli.json = false,
                _ => return Err(CliError::MissingValue(a)),
            },
            s if s.starts_with("--conf=") => cli.conf = Some(s["--conf=".len()..].to_string()),
            // Combined short flags such as -tc FILE are not supported; say so plainly.
            other => return Err(CliError::Unknown(other.to_string())),
        }
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Cli, CliError> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let c = p(&["-t", "-c", "x.yaml"]).unwrap();
        assert!(c.test);
        assert_eq!(c.conf.as_deref(), Some("x.yaml"));
        assert_eq!(p(&["--conf=y"]).unwrap().conf.as_deref(), Some("y"));
        assert!(p(&["-c"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }
}
