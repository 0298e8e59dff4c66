//! Where the `route` and `vnet` binaries are, building them if needed.
//!
//! `e2e` does not depend on the `route` and `vnet` packages (cargo would
//! build their libraries, not their binaries), so `cargo test -p e2e` alone
//! does not build the programs under test. A test executable lives in
//! `target/<profile>/deps/`; the binaries of the same profile are in
//! `target/<profile>/`. The first test that needs them looks there, and if
//! either is missing, or older than a source file of its own crate or of
//! `proto` (or the workspace's `Cargo.toml`/`Cargo.lock`), it runs
//! `cargo build -p route -p vnet --bins` once for the whole test process,
//! with the same profile and target dir, using the `CARGO` that runs the
//! tests. The staleness check keeps an edited route from being tested
//! through its old binary.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Paths of the two programs.
#[derive(Debug)]
pub struct Binaries {
    /// The hub.
    pub route: PathBuf,
    /// The endpoint.
    pub vnet: PathBuf,
}

/// The binaries, built once per test process if missing or stale.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        let deps = exe.parent().expect("the test executable's folder");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = if deps.file_name().is_some_and(|name| name == "deps") {
            deps.parent().expect("target/<profile>")
        } else {
            deps
        };
        let bins = Binaries {
            route: profile_dir.join(format!("route{}", std::env::consts::EXE_SUFFIX)),
            vnet: profile_dir.join(format!("vnet{}", std::env::consts::EXE_SUFFIX)),
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace holds e2e");
        if let Some(why) = needs_build(&bins, workspace) {
            eprintln!("e2e: building route and vnet ({why})");
            build(profile_dir, workspace);
        }
        for path in [&bins.route, &bins.vnet] {
            assert!(
                path.exists(),
                "{} is missing after building",
                path.display()
            );
        }
        bins
    })
}

fn needs_build(bins: &Binaries, workspace: &Path) -> Option<String> {
    for (binary, krate) in [(&bins.route, "route"), (&bins.vnet, "vnet")] {
        let built = match std::fs::metadata(binary).and_then(|m| m.modified()) {
            Ok(time) => time,
            Err(_) => return Some(format!("{} is missing", binary.display())),
        };
        // The binary's own crate and proto, and the workspace's manifest
        // and lock file.
        let mut newest = None::<(SystemTime, PathBuf)>;
        for root in [
            workspace.join(krate).join("src"),
            workspace.join(krate).join("Cargo.toml"),
            workspace.join("proto").join("src"),
            workspace.join("proto").join("Cargo.toml"),
            workspace.join("Cargo.toml"),
            workspace.join("Cargo.lock"),
        ] {
            newest_under(&root, &mut newest);
        }
        if let Some((time, path)) = newest {
            if time > built {
                return Some(format!(
                    "{} is newer than {}",
                    path.display(),
                    binary.display()
                ));
            }
        }
    }
    None
}

fn newest_under(path: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                newest_under(&entry.path(), newest);
            }
        }
    } else if let Ok(time) = meta.modified() {
        let newer = match newest {
            Some((t, _)) => time > *t,
            None => true,
        };
        if newer {
            *newest = Some((time, path.to_path_buf()));
        }
    }
}

fn build(profile_dir: &Path, workspace: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Cargo gives a test the variables of its own package (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR, ...). Build scripts such as ring's rerun when
    // those change, so passing them on would rebuild half the dependency
    // tree here, and again in the next plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let per_package = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CFG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if per_package {
            cmd.env_remove(key);
        }
    }
    cmd.args([
        "build",
        "-p",
        "route",
        "-p",
        "vnet",
        "--bins",
        "--profile",
        &profile,
    ])
    .arg("--manifest-path")
    .arg(workspace.join("Cargo.toml"));
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    let status = cmd
        .status()
        .expect("running cargo build for route and vnet");
    assert!(
        status.success(),
        "cargo build -p route -p vnet failed: {status}"
    );
}
