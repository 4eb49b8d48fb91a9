//! Records the git commit the binary is built from, for `atlas_backup_exporter_build_info`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ATLAS_BACKUP_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let revision = std::env::var("ATLAS_BACKUP_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8(output.stdout).ok()?;
            Some(text.trim().to_owned()).filter(|t| output.status.success() && !t.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ATLAS_BACKUP_EXPORTER_REVISION={revision}");
}
