//! `rootemu export`: a tree built under consistent mode as a tar layer or an OCI image,
//! with the owners, modes, device nodes, ACLs and file capabilities real root's build has.

use clap::{Args, ValueEnum};
use flate2::write::GzEncoder;
use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, RootFsBuilder, Sha256Digest,
};
use rootemu::image::{self, Builder, Entry, EntryKind, ImageError};
use rootemu::launch::quoted;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Arguments of `rootemu export`.
///
/// Walks DIR (in byte order of names) and writes every file as real root's build would
/// have it: owner, group, mode, device type and number from the records `rootemu run
/// --consistent` left (user.containers.override_stat and its directory records, see
/// runtime/src/record.rs); files without a record belong to their real owner, the
/// building user becoming 0 (see --builder). Devices are device entries, hard links
/// links, xattrs PAX records (SCHILY.xattr.*): ACLs with the building user's ids as 0 and
/// kept ACLs as the build set them, file capabilities as v2. rootemu's own xattrs are
/// left out, and so are sockets (a tar cannot hold them).
///
/// The output is written to a temporary name next to OUT and renamed into place when
/// complete: a failure (an unreadable file, a full disk) leaves nothing behind.
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The tree, e.g. the DIR of `rootemu run --consistent --root DIR`.
    dir: PathBuf,
    /// Output: a tar file (tar, oci-archive) or a new directory (oci).
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// tar: one uncompressed layer. oci: an OCI image layout directory (one gzip layer,
    /// config, manifest, index), for `skopeo copy oci:OUT` and `podman pull oci:OUT`.
    /// oci-archive: the same layout as a tar file, for `podman load -i OUT`.
    #[arg(long, value_enum, default_value_t = Format::Tar)]
    format: Format,
    /// Byte-identical output from identical trees: modification times clamped to
    /// SOURCE_DATE_EPOCH (0 if unset) and the image's creation time set to it. Setting
    /// SOURCE_DATE_EPOCH implies --reproducible. (Order and header fields are always fixed.)
    #[arg(long)]
    reproducible: bool,
    /// Host ids that were root in the build (default: the owner of DIR).
    #[arg(long, value_name = "UID:GID")]
    builder: Option<String>,
    /// Name of the image in the OCI index (org.opencontainers.image.ref.name).
    #[arg(long, default_value = "latest")]
    tag: String,
    /// The record store a run kept with `--records DIR` (for files whose file system keeps
    /// no user xattrs); a record counts only for a file unchanged since its run ended.
    #[arg(long, value_name = "DIR")]
    records: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Tar,
    Oci,
    OciArchive,
}

/// Why an export failed.
enum Failure {
    /// The tree could not be read.
    Tree(ImageError),
    /// A file changed or failed while its data was copied.
    Read(PathBuf, io::Error),
    /// The output could not be written.
    Write(io::Error),
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        Failure::Tree(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Write(e)
    }
}

/// Runs `rootemu export`.
pub(crate) fn main(args: ExportArgs) -> Result<u8, String> {
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(v.trim().parse::<i64>().map_err(|_| format!("SOURCE_DATE_EPOCH={v}: not a number of seconds"))?),
        Err(_) if args.reproducible => Some(0),
        Err(_) => None,
    };
    let builder = match &args.builder {
        Some(b) => parse_builder(b)?,
        None => image::builder_of(&args.dir).map_err(|e| e.to_string())?,
    };
    if args.tag.is_empty() || args.tag.contains(['/', '\n']) {
        return Err(format!("--tag {:?}: expected a name without '/'", args.tag));
    }
    let out = &args.output;
    let name = out.file_name().ok_or_else(|| format!("{}: not a file name", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if args.format == Format::Oci && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{}: exists and is not empty (an OCI layout is written as a new directory)", out.display()));
    }
    let tmp = Temp(parent.join(format!(".{}.rootemu-{}", name.to_string_lossy(), std::process::id())));
    // Held (shared lock) until the export ends: a run cannot change the store meanwhile.
    let store = match &args.records {
        Some(p) => Some(rootemu::store::Store::open(p, false).map_err(|e| format!("--records {}: {e}", quoted(p)))?),
        None => None,
    };
    let records = match &store {
        Some(s) => s.read().map_err(|e| format!("--records {}: {e}", quoted(args.records.as_deref().unwrap_or(Path::new("")))))?,
        None => Default::default(),
    };
    let mut job = Job { dir: &args.dir, builder, epoch, progress: Progress::new(args.quiet), skip: Vec::new(), records: &records };
    if let Some(p) = &args.records {
        job.skip_path(&p.join(rootemu::store::FILE)); // a store kept inside the tree is not part of it
    }
    let done = match args.format {
        Format::Tar => {
            let f = File::create_new(&tmp.0).map_err(|e| format!("{}: cannot create: {e}", tmp.0.display()))?;
            job.skip_path(&tmp.0);
            job.tar(f).and_then(|(f, s)| {
                f.sync_all()?;
                Ok(s)
            })
        }
        Format::Oci | Format::OciArchive => {
            std::fs::create_dir(&tmp.0).map_err(|e| format!("{}: cannot create: {e}", tmp.0.display()))?;
            job.skip_path(&tmp.0);
            job.oci(&tmp.0, &args.tag).and_then(|s| {
                if args.format == Format::OciArchive {
                    let layout = tmp.0.with_extension("layout");
                    std::fs::rename(&tmp.0, &layout)?;
                    let r = pack_layout(&layout, &tmp.0);
                    let _ = std::fs::remove_dir_all(&layout);
                    r?;
                }
                Ok(s)
            })
        }
    };
    let stats = done.map_err(|e| match e {
        Failure::Tree(e) => e.to_string(),
        Failure::Read(p, e) => format!("{}: cannot read: {e}", p.display()),
        Failure::Write(e) => format!("{}: cannot write: {e}", out.display()),
    })?;
    std::fs::rename(&tmp.0, out).map_err(|e| format!("{}: cannot rename into place: {e}", out.display()))?;
    std::mem::forget(tmp);
    job.progress.finish(&stats, out);
    Ok(0)
}

fn parse_builder(s: &str) -> Result<Builder, String> {
    let (u, g) = s.split_once(':').ok_or_else(|| format!("--builder {s}: expected UID:GID"))?;
    match (u.parse(), g.parse()) {
        (Ok(uid), Ok(gid)) => Ok(Builder { uid, gid }),
        _ => Err(format!("--builder {s}: expected numeric UID:GID")),
    }
}

/// A temporary output, removed unless it was renamed into place.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0).or_else(|_| std::fs::remove_dir_all(&self.0));
        let _ = std::fs::remove_dir_all(self.0.with_extension("layout"));
    }
}

/// What was written.
#[derive(Default)]
struct Stats {
    entries: u64,
    bytes: u64,
}

struct Job<'a> {
    dir: &'a Path,
    builder: Builder,
    epoch: Option<i64>,
    progress: Progress,
    /// (device, inode) of the output being written, left out of the walk.
    skip: Vec<(u64, u64)>,
    /// The record store's records (`--records`).
    records: &'a rootemu::store::Entries,
}

impl Job<'_> {
    fn skip_path(&mut self, p: &Path) {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            self.skip.push((m.dev(), m.ino()));
        }
    }

    /// Writes the tree as a tar to `w`.
    fn tar<W: Write>(&mut self, w: W) -> Result<(W, Stats), Failure> {
        let mut ar = tar::Builder::new(w);
        let mut stats = Stats::default();
        let (dir, builder, skip) = (self.dir, self.builder, self.skip.clone());
        let skipped = image::walk(dir, builder, &skip, self.records, &mut |e: Entry| -> Result<(), Failure> {
            append(&mut ar, &e, self.epoch)?;
            stats.entries += 1;
            if let EntryKind::File { size } = e.kind {
                stats.bytes += size;
            }
            self.progress.tick(&stats);
            Ok(())
        })?;
        for s in &skipped.sockets {
            self.progress.note(&format!("{}: a socket, left out (a tar cannot hold it)", s.display()));
        }
        ar.finish()?;
        Ok((ar.into_inner()?, stats))
    }

    /// Writes an OCI image layout into the (empty) directory `dir`.
    fn oci(&mut self, dir: &Path, tag: &str) -> Result<Stats, Failure> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        let layer_tmp = blobs.join(".layer");
        let file = Hashing::new(File::create_new(&layer_tmp)?);
        let gz = GzEncoder::new(file, flate2::Compression::default());
        let (tar_hash, stats) = self.tar(Hashing::new(gz))?;
        let (gz, diff_id, _) = tar_hash.done();
        let (file, layer_digest, layer_size) = gz.finish()?.done();
        file.sync_all()?;
        std::fs::rename(&layer_tmp, blobs.join(&layer_digest))?;
        let created = self.epoch.map(rfc3339).unwrap_or_else(|| {
            rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
        });
        let config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .config(
                ConfigBuilder::default()
                    .env(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()])
                    .build()
                    .map_err(oci_err)?,
            )
            .rootfs(RootFsBuilder::default().typ("layers").diff_ids(vec![format!("sha256:{diff_id}")]).build().map_err(oci_err)?)
            .history(vec![HistoryBuilder::default().created(created).created_by("rootemu export").build().map_err(oci_err)?])
            .build()
            .map_err(oci_err)?;
        let config = blob(&blobs, MediaType::ImageConfig, &serde_json::to_vec(&config).map_err(oci_err)?)?;
        let layer = Descriptor::new(MediaType::ImageLayerGzip, layer_size, digest(&layer_digest)?);
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(vec![layer])
            .build()
            .map_err(oci_err)?;
        let manifest = blob(&blobs, MediaType::ImageManifest, &serde_json::to_vec(&manifest).map_err(oci_err)?)?;
        let manifest = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(manifest.digest().clone())
            .size(manifest.size())
            .annotations(
                [("org.opencontainers.image.ref.name".to_string(), tag.to_string())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .build()
            .map_err(oci_err)?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![manifest])
            .build()
            .map_err(oci_err)?;
        write_synced(&dir.join("index.json"), &serde_json::to_vec(&index).map_err(oci_err)?)?;
        let layout = OciLayoutBuilder::default().image_layout_version("1.0.0").build().map_err(oci_err)?;
        write_synced(&dir.join("oci-layout"), &serde_json::to_vec(&layout).map_err(oci_err)?)?;
        Ok(stats)
    }
}

/// One entry into the archive: a ustar header, preceded by PAX records for what ustar
/// cannot say (xattrs, long names, big ids or sizes).
fn append<W: Write>(ar: &mut tar::Builder<W>, e: &Entry, epoch: Option<i64>) -> Result<(), Failure> {
    let mut h = tar::Header::new_ustar();
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let (size, kind) = match &e.kind {
        EntryKind::File { size } => (*size, tar::EntryType::Regular),
        EntryKind::Dir => (0, tar::EntryType::Directory),
        EntryKind::Symlink(_) => (0, tar::EntryType::Symlink),
        EntryKind::Hardlink(_) => (0, tar::EntryType::Link),
        EntryKind::Fifo => (0, tar::EntryType::Fifo),
        EntryKind::Char(..) => (0, tar::EntryType::Char),
        EntryKind::Block(..) => (0, tar::EntryType::Block),
    };
    h.set_entry_type(kind);
    h.set_mode(e.perms);
    const USTAR_ID_MAX: u32 = 0o7777777;
    h.set_uid(u64::from(e.uid.min(USTAR_ID_MAX)));
    h.set_gid(u64::from(e.gid.min(USTAR_ID_MAX)));
    if e.uid > USTAR_ID_MAX {
        pax.push(("uid".into(), e.uid.to_string().into_bytes()));
    }
    if e.gid > USTAR_ID_MAX {
        pax.push(("gid".into(), e.gid.to_string().into_bytes()));
    }
    const USTAR_SIZE_MAX: u64 = 0o77777777777;
    h.set_size(size.min(USTAR_SIZE_MAX));
    if size > USTAR_SIZE_MAX {
        pax.push(("size".into(), size.to_string().into_bytes()));
    }
    let mtime = epoch.map_or(e.mtime, |t| e.mtime.min(t)).max(0);
    h.set_mtime(mtime as u64);
    let (major, minor) = match e.kind {
        EntryKind::Char(a, b) | EntryKind::Block(a, b) => (a, b),
        _ => (0, 0),
    };
    h.set_device_major(major)?;
    h.set_device_minor(minor)?;
    if h.set_path(image::display_path(&e.path)).is_err() {
        pax.push(("path".into(), e.path.clone()));
        let u = h.as_ustar_mut().expect("a ustar header");
        let n = e.path.len().min(u.name.len());
        u.name[..n].copy_from_slice(&e.path[..n]);
    }
    if let EntryKind::Symlink(t) | EntryKind::Hardlink(t) = &e.kind {
        // The target as it is (the crate's path setter would normalise `a//b` or `x/`).
        let u = h.as_ustar_mut().expect("a ustar header");
        if t.len() <= u.linkname.len() {
            u.linkname[..t.len()].copy_from_slice(t);
        } else {
            pax.push(("linkpath".into(), t.clone()));
            let n = u.linkname.len();
            u.linkname.copy_from_slice(&t[..n]);
        }
    }
    for (name, value) in &e.xattrs {
        match std::str::from_utf8(name) {
            Ok(n) if !n.contains('=') => pax.push((format!("SCHILY.xattr.{n}"), value.clone())),
            _ => {
                return Err(Failure::Tree(ImageError {
                    path: e.source.clone(),
                    what: "export an xattr name that is not UTF-8 or holds '='",
                    error: io::Error::from_raw_os_error(libc::EINVAL),
                }));
            }
        }
    }
    if !pax.is_empty() {
        ar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    h.set_cksum();
    if size == 0 || kind != tar::EntryType::Regular {
        ar.append(&h, io::empty())?;
        return Ok(());
    }
    let mut f = File::open(&e.source).map_err(|err| Failure::Read(e.source.clone(), err))?;
    let mut data = Exact { inner: &mut f, left: size, path: &e.source, failure: None };
    ar.append(&h, &mut data).map_err(|err| match data.failed() {
        Some(r) => r,
        None => Failure::Write(err),
    })
}

/// A file's data, exactly as long as the header says (a file that changed length while
/// being exported is an error, not a corrupt archive).
struct Exact<'a> {
    inner: &'a mut File,
    left: u64,
    path: &'a Path,
    /// Why reading (not writing) failed.
    failure: Option<io::Error>,
}

impl Exact<'_> {
    /// The read error, if reading (and not writing) is what failed.
    fn failed(&mut self) -> Option<Failure> {
        self.failure.take().map(|e| Failure::Read(self.path.into(), e))
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) => Err(io::Error::other("the file became shorter while it was exported")),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => Err(e),
        };
        match n {
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                let kind = e.kind();
                self.failure = Some(e);
                Err(io::Error::from(kind))
            }
        }
    }
}

/// A writer that hashes (SHA-256) and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing { inner, hash: Sha256::new(), len: 0 }
    }

    /// The writer, the hex digest and the length.
    fn done(self) -> (W, String, u64) {
        (self.inner, hex(&self.hash.finalize()), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn oci_err(e: impl std::fmt::Display) -> Failure {
    Failure::Write(io::Error::other(format!("building the OCI metadata: {e}")))
}

fn digest(hex: &str) -> Result<Digest, Failure> {
    Ok(Digest::from(Sha256Digest::from_str(hex).map_err(oci_err)?))
}

/// Stores `data` as a blob; its descriptor.
fn blob(blobs: &Path, media: MediaType, data: &[u8]) -> Result<Descriptor, Failure> {
    let h = hex(&Sha256::digest(data));
    write_synced(&blobs.join(&h), data)?;
    Ok(Descriptor::new(media, data.len() as u64, digest(&h)?))
}

fn write_synced(p: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = File::create_new(p)?;
    f.write_all(data)?;
    f.sync_all()
}

/// A tar of the layout directory `layout` at `out` (an oci-archive).
fn pack_layout(layout: &Path, out: &Path) -> Result<(), Failure> {
    let f = File::create_new(out)?;
    let mut ar = tar::Builder::new(f);
    let mut names = vec![PathBuf::from("oci-layout"), PathBuf::from("index.json"), PathBuf::from("blobs"), PathBuf::from("blobs/sha256")];
    let mut blobs: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    blobs.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    names.extend(blobs.into_iter().map(|b| Path::new("blobs/sha256").join(b)));
    for n in names {
        let p = layout.join(&n);
        let m = std::fs::metadata(&p)?;
        let mut h = tar::Header::new_ustar();
        h.set_mode(if m.is_dir() { 0o755 } else { 0o644 });
        h.set_entry_type(if m.is_dir() { tar::EntryType::Directory } else { tar::EntryType::Regular });
        h.set_size(if m.is_dir() { 0 } else { m.len() });
        if m.is_dir() {
            ar.append_data(&mut h, &n, io::empty())?;
        } else {
            ar.append_data(&mut h, &n, File::open(&p)?)?;
        }
    }
    ar.finish()?;
    ar.into_inner()?.sync_all()?;
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch (civil-from-days, proleptic Gregorian).
fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Progress lines on stderr, once a second after the first two seconds (big trees only).
struct Progress {
    quiet: bool,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress { quiet, start: now, last: now, shown: false }
    }

    fn tick(&mut self, s: &Stats) {
        if self.quiet || s.entries % 256 != 0 {
            return;
        }
        let now = Instant::now();
        if now - self.start < Duration::from_secs(2) || now - self.last < Duration::from_secs(1) {
            return;
        }
        self.last = now;
        self.shown = true;
        eprintln!("rootemu: export: {} entries, {} MB of file data", s.entries, s.bytes / 1_000_000);
    }

    fn note(&self, what: &str) {
        if !self.quiet {
            eprintln!("rootemu: export: {what}");
        }
    }

    fn finish(&self, s: &Stats, out: &Path) {
        if self.shown {
            eprintln!(
                "rootemu: export: {} entries, {} MB of file data written to {} in {:.1} s",
                s.entries,
                s.bytes / 1_000_000,
                out.display(),
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
