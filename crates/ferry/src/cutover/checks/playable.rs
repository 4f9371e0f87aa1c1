//! `playable`: a sample of migrated videos decodes. `ffprobe` (FFmpeg) reads each video's
//! target file and HLS master playlist (PeerTube's streaming playlist: a key in the target's
//! media, or a URL), decodes their first frames and reads their duration, which must be the
//! source's (the row's `duration`, else the same file in the source's media) within
//! `tolerance_s`. A video may have a file, a playlist, or both.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Env, Found, column, sample};
use ferry_blobs::Store;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// SQL on the target database: one row per video, a key or URL, or a JSON object
    /// `{"file": …, "duration": seconds, "hls": …}` (placeholders `{base}` = the target URL).
    pub files_sql: String,
    #[serde(default = "default_sample")]
    pub sample: usize,
    #[serde(default = "default_tolerance")]
    pub tolerance_s: f64,
}

fn default_sample() -> usize {
    5
}

fn default_tolerance() -> f64 {
    1.0
}

/// One video to probe.
#[derive(Debug, Clone)]
struct Video {
    file: String,
    duration: Option<f64>,
    hls: Option<String>,
}

fn parse_row(text: &str) -> Video {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Video {
            file: o
                .get("file")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            duration: o.get("duration").and_then(|d| {
                d.as_f64()
                    .or_else(|| d.as_str().and_then(|s| s.parse().ok()))
            }),
            hls: o.get("hls").and_then(Value::as_str).map(str::to_string),
        },
        _ => Video {
            file: text.to_string(),
            duration: None,
            hls: None,
        },
    }
}

pub async fn run(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    if which("ffprobe").is_none() {
        return Ok(Found::fail(
            "ffprobe is not installed: install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg), then check again",
        ));
    }
    let rows: Vec<Video> = column(&env.spec.target.database, &p.files_sql)
        .await
        .map_err(|e| e.context("files_sql"))?
        .into_iter()
        .flatten()
        .map(|t| parse_row(&t))
        .filter(|v| !v.file.is_empty() || v.hls.is_some())
        .collect();
    if rows.is_empty() {
        return Ok(Found::fail("files_sql returned no video in the target"));
    }
    let chosen = sample(&rows, p.sample.max(1));
    let mut problems = Vec::new();
    let (mut probed, mut playlists) = (0, 0);
    for v in &chosen {
        let expected = match v.duration {
            Some(d) => Some(d),
            None if v.file.is_empty() => None,
            None => match locate(env.spec.source.media.as_deref(), &v.file, env) {
                Some(src) => probe(&src).await.ok().map(|(_, d)| d),
                None => None,
            },
        };
        let mut places: Vec<String> = Some(v.file.clone())
            .filter(|f| !f.is_empty())
            .into_iter()
            .collect();
        places.extend(v.hls.clone());
        playlists += usize::from(v.hls.is_some());
        for place in places {
            let Some(at) = locate(env.spec.target.media.as_deref(), &place, env) else {
                problems.push(format!(
                    "{place}: neither a URL nor a key in a local [target] media folder"
                ));
                continue;
            };
            probed += 1;
            match probe(&at).await {
                Err(why) => problems.push(format!("{place}: {why}")),
                Ok((frames, got)) => {
                    if frames == 0 {
                        problems.push(format!("{place}: no video frame decodes"));
                    }
                    if let Some(want) = expected
                        && (got - want).abs() > p.tolerance_s
                    {
                        problems.push(format!(
                            "{place}: lasts {got:.1} s, the source {want:.1} s (tolerance {} s)",
                            p.tolerance_s
                        ));
                    }
                }
            }
        }
    }
    Ok(Found::judge(
        format!(
            "{probed} files of {} sampled videos (of {}) decode{}, durations within {} s",
            chosen.len(),
            rows.len(),
            if playlists > 0 {
                format!(" ({playlists} of them HLS master playlists)")
            } else {
                String::new()
            },
            p.tolerance_s
        ),
        problems,
    ))
}

/// Where ffprobe reads `place`: a URL as is (`{base}` = the target URL), else the key under a
/// local media folder.
fn locate(media: Option<&str>, place: &str, env: &Env<'_>) -> Option<String> {
    if place.contains("{base}") {
        let base = env.spec.target.url.as_deref()?.trim_end_matches('/');
        return Some(place.replace("{base}", base));
    }
    if place.starts_with("http://") || place.starts_with("https://") {
        return Some(place.to_string());
    }
    let root = Store::parse(media?).ok()?.local_path()?;
    Some(
        root.join(place.trim_start_matches('/'))
            .display()
            .to_string(),
    )
}

/// Frames decoded (of the first few) and the duration, by ffprobe.
async fn probe(at: &str) -> Result<(u64, f64), String> {
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#5",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames:format=duration",
            "-of",
            "json",
        ])
        .arg(at)
        .output()
        .await
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "ffprobe cannot read it: {}",
            stderr.lines().last().unwrap_or("no message").trim()
        ));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("ffprobe gave no JSON: {e}"))?;
    let Some(stream) = v.pointer("/streams/0") else {
        return Err("no video stream".into());
    };
    let frames = stream
        .get("nb_read_frames")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let duration = v
        .pointer("/format/duration")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("ffprobe reports no duration")?;
    if frames > 0 && stderr.contains("Invalid data") {
        return Err(format!(
            "decoding errors: {}",
            stderr.lines().next().unwrap_or_default()
        ));
    }
    Ok((frames, duration))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
