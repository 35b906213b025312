//! A real SMTP server for tests: `scripts/smtp-catcher.py` (aiosmtpd, in the
//! project's virtualenv; `CE_PYTHON` names another interpreter) on a free
//! port, keeping each mail as a file.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running catcher; stopped when dropped.
pub struct SmtpCatcher {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

/// The project's virtualenv's Python (or `CE_PYTHON`).
pub(crate) fn python() -> String {
    std::env::var("CE_PYTHON").unwrap_or_else(|_| {
        let state = std::env::var("CE_STATE_DIR").unwrap_or_else(|_| {
            format!(
                "{}/.local/state/cityevents",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        format!("{state}/tools/venv/bin/python")
    })
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-catcher.py")
}

impl SmtpCatcher {
    /// Starts one on a free port with an empty folder, ready to take mail.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("smtp-{}", uuid::Uuid::new_v4().simple()));
        let mut c = Self {
            port,
            dir,
            child: None,
        };
        c.resume();
        c
    }

    /// Stops it (an SMTP outage); mails kept so far stay.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and folder.
    pub fn resume(&mut self) {
        let child = Command::new(python())
            .arg(script())
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("the SMTP catcher starts (scripts/install-deps.sh installs aiosmtpd)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP catcher did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every mail received so far, oldest first, as raw bytes.
    pub fn mails(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Waits (up to 20 s) until `n` mails have arrived, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} mails arrived",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpCatcher {
    fn drop(&mut self) {
        self.pause();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
