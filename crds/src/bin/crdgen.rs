//! Writes the CRD YAML files (`crdgen DIR [--docs FILE]`) or checks them
//! (`crdgen --check DIR [--docs FILE]`); `--docs` also writes (checks) the
//! Markdown API reference.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.first().is_some_and(|a| a == "--check");
    if check {
        args.remove(0);
    }
    let docs = args
        .iter()
        .position(|a| a == "--docs")
        .and_then(|i| args.get(i + 1).cloned());
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: crdgen [--check] DIR [--docs FILE]");
        return ExitCode::from(2);
    };
    let files = match contour_crds::render_all() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crdgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut outputs: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|(name, text)| (dir.join(name), text))
        .collect();
    if let Some(docs) = docs {
        match contour_crds::all_crds() {
            Ok(crds) => outputs.push((PathBuf::from(docs), contour_crds::apidoc::render(&crds))),
            Err(e) => {
                eprintln!("crdgen: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut stale = false;
    for (path, text) in outputs {
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != text {
                eprintln!(
                    "crdgen: {} differs from the types; run `make crds`",
                    path.display()
                );
                stale = true;
            }
        } else {
            let parent = path.parent().map(PathBuf::from).unwrap_or_default();
            if let Err(e) =
                std::fs::create_dir_all(&parent).and_then(|()| std::fs::write(&path, text))
            {
                eprintln!("crdgen: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
    }
    if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
