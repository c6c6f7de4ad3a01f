//! The `bulb` command: parse flags, load the configuration, run.

use bulb::cli;
use bulb::control::Source;
use std::path::Path;
use std::process::exit;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_CONF: &str = "/etc/bulb/bulb.yaml";

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match cli::parse(args.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bulb: {e}\n\n{}", cli::USAGE);
            exit(2);
        }
    };
    if cli.help {
        print!("{}", cli::USAGE);
        return;
    }
    if cli.version {
        println!("bulb {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let source = match (&cli.conf, std::env::var("NODES")) {
        (Some(f), _) => Source::File(f.clone()),
        (None, Ok(_)) => Source::Nodes,
        (None, Err(_)) if Path::new(DEFAULT_CONF).exists() => Source::File(DEFAULT_CONF.into()),
        (None, Err(_)) => {
            eprintln!("bulb: no configuration: give -c FILE, set NODES=\"host:port ...\", or create {DEFAULT_CONF}");
            exit(1);
        }
    };
    let name = match &source {
        Source::File(f) => f.clone(),
        Source::Nodes => "NODES".into(),
    };
    let config = match source.load() {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "bulb: configuration {name} is invalid ({} problem(s))",
                errors.len()
            );
            exit(1);
        }
    };
    if cli.test {
        match &cli.diff {
            None => println!("bulb: configuration {name} is valid"),
            Some(old) => {
                // The diff goes to stdout (JSON with --format json), the verdict to stderr.
                eprintln!("bulb: configuration {name} is valid");
                let Ok(old_config) = bulb::config::load_file(old) else {
                    eprintln!("bulb: {old} (the running configuration to compare with) is invalid");
                    exit(1);
                };
                let d = bulb::diff::diff(&old_config, &config);
                if cli.json {
                    println!("{d}");
                } else {
                    print!("{}", bulb::diff::text(&d));
                }
            }
        }
        return;
    }
    if let Err(e) = bulb::server::run(&cli, source, config, args) {
        eprintln!("bulb: {e}");
        exit(1);
    }
}
