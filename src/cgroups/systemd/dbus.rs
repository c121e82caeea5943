//! The few systemd manager calls the driver makes, over D-Bus with zbus's
//! blocking API: the system bus, or systemd's private socket when there is no
//! bus daemon (as go-systemd falls back for root). Jobs are waited for through
//! their JobRemoved signal, subscribed to before the job is queued.

use super::props::{Prop, Props};
use crate::bail;
use crate::error::{Error, Result};
use std::sync::mpsc;
use std::time::Duration;
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedObjectPath, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// runc waits 30 s for a unit's start or stop job.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Systemd {
    conn: Connection,
}

/// A D-Bus error reply's name ("org.freedesktop.systemd1.UnitExists").
pub fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        zbus::Error::FDO(f) => match **f {
            zbus::fdo::Error::UnknownObject(_) => Some("org.freedesktop.DBus.Error.UnknownObject"),
            _ => None,
        },
        _ => None,
    }
}

fn to_value(p: &Prop) -> Value<'static> {
    match p {
        Prop::Bool(b) => Value::from(*b),
        Prop::U64(v) => Value::from(*v),
        Prop::Str(s) => Value::from(s.clone()),
        Prop::Strs(v) => Value::from(v.clone()),
        Prop::U32s(v) => Value::from(v.clone()),
        Prop::Bytes(v) => Value::from(v.clone()),
        Prop::Devices(v) => Value::from(v.clone()),
    }
}

fn to_dbus(props: &Props) -> Vec<(&'static str, Value<'static>)> {
    props.iter().map(|(k, v)| (*k, to_value(v))).collect()
}

impl Systemd {
    /// The user's own systemd instance (rootless), over the user's session
    /// bus, as runc requires it (Debian: dbus-user-session). Not systemd's
    /// private socket: zbus aborts on the messages the user instance sends
    /// there (seen in the VM lane), and an abort skips all cleanup.
    pub fn connect_user() -> Result<Systemd> {
        Connection::session().map(|conn| Systemd { conn }).map_err(|e| {
            Error::new(format!(
                "rootless --systemd-cgroup: cannot reach your systemd instance over your D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus; Debian: dbus-user-session): {e}"
            ))
        })
    }

    /// The manager's own cgroup ("/user.slice/user-1000.slice/user@1000.service"
    /// for a user's instance): its units' cgroups are below it.
    pub fn manager_cgroup(&self) -> Result<String> {
        let reply = self
            .conn
            .call_method(
                Some(DEST),
                PATH,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(MANAGER, "ControlGroup"),
            )
            .map_err(|e| Error::new(format!("systemd manager's ControlGroup: {e}")))?;
        let v: zbus::zvariant::OwnedValue = reply
            .body()
            .deserialize()
            .map_err(|e| Error::new(format!("systemd manager's ControlGroup: {e}")))?;
        String::try_from(v).map_err(|e| Error::new(format!("systemd manager's ControlGroup: {e}")))
    }

    pub fn connect() -> Result<Systemd> {
        let bus = match Connection::system() {
            Ok(conn) => return Ok(Systemd { conn }),
            Err(e) => e,
        };
        let private =
            zbus::blocking::connection::Builder::address("unix:path=/run/systemd/private")
                .and_then(|b| b.p2p().build());
        match private {
            Ok(conn) => Ok(Systemd { conn }),
            Err(p) => bail!(
                "cannot reach systemd over D-Bus: system bus: {bus}; /run/systemd/private: {p}"
            ),
        }
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::message::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
    }

    /// Start a transient unit and wait until systemd has started it.
    pub fn start_transient(
        &self,
        unit: &str,
        props: &Props,
    ) -> std::result::Result<(), StartError> {
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let waiter = self.job_waiter().map_err(StartError::Other)?;
        let reply = self
            .call(
                "StartTransientUnit",
                &(unit, "replace", to_dbus(props), aux),
            )
            .map_err(|e| {
                if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") {
                    StartError::Exists
                } else {
                    StartError::Other(Error::new(format!("start unit {unit}: {e}")))
                }
            })?;
        let job = job_path(&reply).map_err(StartError::Other)?;
        match waiter.wait(&job) {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => Err(StartError::Other(Error::new(format!(
                "start unit {unit}: systemd's job ended \"{r}\" (see `systemctl status {unit}` and `journalctl -u {unit}`)"
            )))),
            Err(e) => Err(StartError::Other(Error::new(format!("start unit {unit}: {e}")))),
        }
    }

    /// Stop a unit and wait for it; a unit that is gone already is fine.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let waiter = self.job_waiter()?;
        match self.call("StopUnit", &(unit, "replace")) {
            Ok(reply) => {
                let job = job_path(&reply)?;
                match waiter.wait(&job) {
                    Ok(r) if r == "done" => {}
                    Ok(r) => log::warn!("stop unit {unit}: systemd's job ended \"{r}\""),
                    Err(e) => bail!("stop unit {unit}: {e}"),
                }
            }
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => bail!("stop unit {unit}: {e}"),
        }
        // A unit that failed stays loaded until reset: let systemd forget it.
        let _ = self.call("ResetFailedUnit", &(unit,));
        Ok(())
    }

    pub fn reset_failed(&self, unit: &str) {
        let _ = self.call("ResetFailedUnit", &(unit,));
    }

    /// Change a running unit's properties (runtime=true: not written to /etc).
    pub fn set_properties(&self, unit: &str, props: &Props) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(unit, true, to_dbus(props)))
            .map(drop)
            .map_err(|e| Error::new(format!("set properties of unit {unit}: {e}")))
    }

    /// A loaded unit's ActiveState ("active", "failed", ...); None if not loaded.
    pub fn active_state(&self, unit: &str) -> Result<Option<String>> {
        let path: OwnedObjectPath = match self.call("GetUnit", &(unit,)) {
            Ok(m) => m
                .body()
                .deserialize()
                .map_err(|e| Error::new(format!("GetUnit {unit}: {e}")))?,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(None)
            }
            Err(e) => bail!("GetUnit {unit}: {e}"),
        };
        let reply = self
            .conn
            .call_method(
                Some(DEST),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Unit", "ActiveState"),
            )
            .map_err(|e| Error::new(format!("ActiveState of {unit}: {e}")))?;
        let v: zbus::zvariant::OwnedValue = reply
            .body()
            .deserialize()
            .map_err(|e| Error::new(format!("ActiveState of {unit}: {e}")))?;
        Ok(String::try_from(v).ok())
    }

    /// Subscribe to JobRemoved before queueing a job, so its end is not missed.
    fn job_waiter(&self) -> Result<JobWaiter> {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(MANAGER)
            .and_then(|b| b.member("JobRemoved"))
            .and_then(|b| b.path(PATH))
            .map_err(|e| Error::new(format!("D-Bus match rule: {e}")))?
            .build();
        let it = MessageIterator::for_match_rule(rule, &self.conn, Some(64))
            .map_err(|e| Error::new(format!("subscribe to systemd's JobRemoved: {e}")))?;
        Ok(JobWaiter { it })
    }
}

pub enum StartError {
    /// A unit of that name is loaded already.
    Exists,
    Other(Error),
}

fn job_path(reply: &zbus::message::Message) -> Result<OwnedObjectPath> {
    reply
        .body()
        .deserialize()
        .map_err(|e| Error::new(format!("systemd's reply: {e}")))
}

struct JobWaiter {
    it: MessageIterator,
}

impl JobWaiter {
    /// The result string of job `job` ("done", "failed", ...), within JOB_TIMEOUT.
    /// The blocking iterator has no timeout: it is read on a helper thread.
    fn wait(self, job: &OwnedObjectPath) -> std::result::Result<String, String> {
        let (tx, rx) = mpsc::channel();
        let want = job.clone();
        let mut it = self.it;
        std::thread::spawn(move || {
            for msg in it.by_ref() {
                let Ok(msg) = msg else { continue };
                let body: zbus::Result<(u32, OwnedObjectPath, String, String)> =
                    msg.body().deserialize();
                if let Ok((_, path, _, result)) = body {
                    if path == want {
                        let _ = tx.send(result);
                        return;
                    }
                }
            }
        });
        rx.recv_timeout(JOB_TIMEOUT).map_err(|_| {
            format!(
                "timed out after {}s waiting for systemd's job {}",
                JOB_TIMEOUT.as_secs(),
                job.as_str()
            )
        })
    }
}
