// Importing an image: applying layers, as the OCI image spec's "applying changesets" says.
//
// An image is an ordered list of layers; each layer is a tar of changes against the layers below.
// The root filesystem is built by extracting the layers in order into one directory:
//
//   1. A member named ".wh.NAME" is a whiteout: NAME (and, for a directory, all below it), as the
//      lower layers left it, is removed. The whiteout itself is never written.
//   2. A member named ".wh..wh..opq" makes its directory opaque: everything the lower layers put
//      in that directory is removed; what this same layer puts there stays (members can come
//      before the marker in the tar, so the layer's own paths are remembered while it is applied).
//   3. Any other member replaces what is at its path, unless both old and new are directories, in
//      which case the directory stays (with its lower contents) and takes the new metadata.
//   4. Hard links name an earlier member of the image; symlinks are stored as written and never
//      followed while extracting (their targets are data for the container, not for us).
//   5. Metadata (owner, mode incl. setuid/setgid/sticky, xattrs, times) come from the tar header;
//      owner first (chown clears setuid bits), then mode, then xattrs, then times. Directory
//      modes and times are applied after the last layer: creating children changes a directory's
//      mtime, and a read-only directory would refuse children when not running as root.
//
// Safety: the tree is built in a fresh hidden directory beside the destination and renamed into
// place at the end, so a failure leaves nothing behind and nothing existing is touched. Every
// path is resolved by the kernel beneath that directory (see SafeRoot); names with "..", absolute
// names, writes through a symlink that leads out, and hard links to anything missing are refused
// with an error naming the layer and the member. Layers stream: the blob is hashed (against the
// manifest digest) and the decompressed tar hashed (against the config's diff_id) while they are
// extracted, in bounded buffers, with limits on expanded size and compression ratio.
//
// Dedup: file data is written in 1 MiB chunks at 4 KiB-aligned offsets, so on DedupFs every
// whole page reaches inline deduplication intact; all-zero pages are left as holes.
using System.Formats.Tar;
using System.Runtime.InteropServices;

namespace DedupFs.Images;

public sealed class ImportOptions
{
    /// <summary>Most bytes all layers may expand to, in total.</summary>
    public long MaxSize { get; init; } = 64L << 30;

    /// <summary>Most a layer may expand relative to its compressed size (checked beyond <see cref="RatioFloor"/>).</summary>
    public double MaxRatio { get; init; } = 1000;

    /// <summary>Below this many expanded bytes a layer's ratio is not judged: tiny tars of empty files compress enormously.</summary>
    public long RatioFloor { get; init; } = 8L << 20;

    /// <summary>Largest PAX or GNU long-name record accepted: the tar reader holds each one in memory.</summary>
    public int MaxMetadataRecord { get; init; } = 1 << 20;

    public Action<ImportProgress>? Progress { get; init; }
    public Action<string>? Warning { get; init; }
    public CancellationToken Cancel { get; init; }

    /// <summary>For tests: resolve paths without openat2, as on kernels older than 5.6.</summary>
    internal bool ForceFallbackResolver { get; init; }
}

/// <summary>Where an import is: the layer, and its entries and expanded bytes so far.</summary>
public readonly record struct ImportProgress(int Layer, int Layers, long Entries, long Bytes);

public sealed record ImportResult(int Layers, long Entries, long LogicalBytes, long ExpandedBytes, IReadOnlyList<string> Warnings);

public static class ImageImporter
{
    /// <summary>
    /// Builds the root filesystem of <paramref name="source"/> at <paramref name="destination"/>,
    /// which must not exist; on any error nothing is left at (or beside) it.
    /// </summary>
    public static ImportResult Import(ImageSource source, string destination, ImportOptions options)
    {
        string full = Path.GetFullPath(destination).TrimEnd('/');
        string name = Path.GetFileName(full);
        string parent = Path.GetDirectoryName(full) ?? throw new ImageException($"{destination}: cannot import onto /");
        if (name is "" or "." or "..") throw new ImageException($"{destination}: not a new directory name");
        if (!Directory.Exists(parent)) throw new ImageException($"{parent}: no such directory");
        Native.LStatMode(Native.AtFdCwd, full, out int statErrno);
        if (statErrno != Native.ENOENT)
            throw new ImageException($"{destination}: already exists");

        int parentFd = Native.OpenAt(Native.AtFdCwd, parent, Native.OPath | Native.ODirectory | Native.OCloExec, 0);
        if (parentFd < 0) throw new ImageException($"{parent}: {Native.Describe(Native.Errno)}");
        string temp = CreateTemp(parentFd, name);
        bool done = false;
        try
        {
            ImportResult result;
            using (var root = new SafeRoot(Path.Combine(parent, temp), options.ForceFallbackResolver))
            {
                var applier = new LayerApplier(root, options);
                for (int i = 0; i < source.Layers.Count; i++) applier.ApplyLayer(source.Layers[i], i, source.Layers.Count);
                applier.Finish();
                result = applier.Result(source.Layers.Count);
            }

            if (Native.RenameAt2(parentFd, temp, parentFd, name, Native.RenameNoReplace) != 0)
            {
                int e = Native.Errno;
                if (e is not (Native.EINVAL or Native.ENOSYS or Native.EOPNOTSUPP))
                    throw new ImageException($"{destination}: {(e == Native.EEXIST ? "appeared while importing" : Native.Describe(e))}");
                // No RENAME_NOREPLACE here: check, then rename (the window is ours to lose, not data).
                if (Native.LStatMode(parentFd, name, out _) != 0) throw new ImageException($"{destination}: appeared while importing");
                if (Native.RenameAt(parentFd, temp, parentFd, name) != 0) throw new ImageException($"{destination}: {Native.Describe(Native.Errno)}");
            }

            done = true;
            return result;
        }
        finally
        {
            if (!done)
            {
                try
                {
                    SafeRoot.RemoveTree(parentFd, temp);
                }
                catch (IOException e)
                {
                    options.Warning?.Invoke($"could not remove {Path.Combine(parent, temp)}: {e.Message}");
                }
            }

            Native.Close(parentFd);
        }
    }

    private static string CreateTemp(int parentFd, string name)
    {
        for (int attempt = 0; ; attempt++)
        {
            string temp = $".{name}.import-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
            if (Native.MkdirAt(parentFd, temp, 0x1C0 /* 0700 */) == 0) return temp;
            if (Native.Errno != Native.EEXIST || attempt > 16) throw new ImageException($"{temp}: {Native.Describe(Native.Errno)}");
        }
    }
}

/// <summary>Applies layers one after the other beneath a <see cref="SafeRoot"/>.</summary>
internal sealed unsafe class LayerApplier(SafeRoot root, ImportOptions options)
{
    private const int Chunk = 1 << 20;
    private const int Page = 4096;
    private static readonly bool IsRoot = Native.GetEuid() == 0;

    private readonly Dictionary<string, (uint Mode, DateTimeOffset Atime, DateTimeOffset Mtime)> _directories = new(StringComparer.Ordinal);
    private readonly HashSet<string> _thisLayer = new(StringComparer.Ordinal);
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(Chunk, pinned: true);
    private long _entries, _logical, _expanded;
    private int _skippedDevices, _skippedXattrs;
    private string _layerName = "";
    private int _layerIndex, _layerCount;
    private string? _entryName;
    private TarHeaderGuard? _guard;
    private long _layerStartBytes, _layerStartEntries, _lastReport;

    // At most ten progress reports a second, however small the entries or large the files.
    private void Report(bool force)
    {
        if (options.Progress is null) return;
        long now = Environment.TickCount64;
        if (!force && now - _lastReport < 100) return;
        _lastReport = now;
        options.Progress(new ImportProgress(_layerIndex + 1, _layerCount, _entries - _layerStartEntries, _expanded - _layerStartBytes));
    }

    public ImportResult Result(int layers)
    {
        var warnings = new List<string>();
        if (_skippedDevices > 0) warnings.Add($"{_skippedDevices} device node(s) skipped: creating them needs root (CAP_MKNOD)");
        if (_skippedXattrs > 0) warnings.Add($"{_skippedXattrs} extended attribute(s) not set (not permitted or not supported here)");
        return new ImportResult(layers, _entries, _logical, _expanded, warnings);
    }

    private ImageException Fail(string reason) =>
        new($"layer {_layerIndex + 1}/{_layerCount} ({_layerName}){(_entryName is null ? "" : $": entry \"{_entryName}\"")}: {reason}");

    public void ApplyLayer(LayerRef layer, int index, int count)
    {
        _layerName = layer.Name;
        _layerIndex = index;
        _layerCount = count;
        _entryName = null;
        _thisLayer.Clear();
        long layerStart = _expanded;
        _layerStartBytes = _expanded;
        _layerStartEntries = _entries;
        HashingStream? blob = null;
        HashingStream? tar = null;
        try
        {
            var blobDigest = layer.Digest is null ? (Digest?)null : Digest.Parse(layer.Digest);
            var diffId = layer.DiffId is null ? (Digest?)null : Digest.Parse(layer.DiffId);
            blob = new HashingStream(layer.Open(), blobDigest?.HashName ?? System.Security.Cryptography.HashAlgorithmName.SHA256);
            var compressedSide = blob;
            var decompressed = Decompression.Open(blob, out var kind);
            tar = new HashingStream(decompressed, diffId?.HashName ?? System.Security.Cryptography.HashAlgorithmName.SHA256, total =>
            {
                long all = layerStart + total;
                _expanded = all;
                if (all > options.MaxSize) throw Fail($"the image expands beyond --max-size ({options.MaxSize} bytes): refusing a possible decompression bomb");
                if (kind != Compression.None && total > options.RatioFloor && total > options.MaxRatio * Math.Max(1, compressedSide.Count))
                    throw Fail($"the layer expands more than --max-ratio {options.MaxRatio} times its compressed size: refusing a possible decompression bomb");
            });
            _guard = new TarHeaderGuard(tar, options.MaxMetadataRecord);
            using (var reader = new TarReader(_guard, leaveOpen: true))
            {
                while (true)
                {
                    options.Cancel.ThrowIfCancellationRequested();
                    TarEntry? entry;
                    try
                    {
                        entry = reader.GetNextEntry(copyData: false);
                    }
                    catch (Exception e) when (e is not (ImageException or OperationCanceledException))
                    {
                        throw Fail((_entryName is null ? "" : "after this entry: ") + $"truncated or corrupt tar: {e.Message}");
                    }

                    if (entry is null) break;
                    _entryName = entry.Name;
                    _entries++;
                    ApplyEntry(entry);
                    Report(force: false);
                }
            }

            _entryName = null;
            tar.Drain();
            blob.Drain();
            Report(force: true);
            if (layer.Size is long size && blob.Count != size)
                throw Fail($"the blob is {blob.Count} bytes but the manifest says {size}");
            if (blobDigest is Digest bd)
            {
                string actual = bd.Algorithm + ":" + Convert.ToHexStringLower(blob.Hash());
                if (actual != layer.Digest) throw Fail($"blob digest mismatch: the manifest says {layer.Digest}, the data is {actual}");
            }

            if (diffId is Digest di)
            {
                string actual = di.Algorithm + ":" + Convert.ToHexStringLower(tar.Hash());
                if (actual != layer.DiffId) throw Fail($"diff_id mismatch: the config says {layer.DiffId}, the uncompressed layer is {actual}");
            }
        }
        catch (Exception e) when (e is not (ImageException or OperationCanceledException))
        {
            throw Fail($"{(e is InvalidDataException or EndOfStreamException ? "corrupt or truncated data" : "failed")}: {e.Message}");
        }
        finally
        {
            if (tar is not null) tar.Dispose();
            else blob?.Dispose();
        }
    }

    private void ApplyEntry(TarEntry entry)
    {
        string[] parts = ImagePath.Split(entry.Name, out string? why) ?? throw Fail($"refused: {why}");
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) return;
        string key = string.Join('/', parts);

        if (parts.Length == 0)
        {
            // "./": the image root itself; only a directory can be it.
            if (entry.EntryType != TarEntryType.Directory) throw Fail("refused: the image root must be a directory");
            _directories[""] = ((uint)entry.Mode & 0xFFF, Atime(entry), entry.ModificationTime);
            if (IsRoot && Native.FchownAt(root.Fd, ".", (uint)entry.Uid, (uint)entry.Gid, Native.AtSymlinkNoFollow) != 0)
                throw Fail($"chown: {Native.Describe(Native.Errno)}");
            return;
        }

        string name = parts[^1];
        bool whiteout = name.StartsWith(".wh.", StringComparison.Ordinal);
        // A whiteout in a directory no layer made has nothing to hide: no need to create it.
        if (whiteout)
        {
            int probe = root.OpenDirectory(parts, parts.Length - 1, create: false);
            if (probe == -Native.ENOENT) return;
            if (probe >= 0) Native.Close(probe);
        }

        int dir = OpenParent(parts, create: true);
        try
        {
            if (name == ".wh..wh..opq")
            {
                string prefix = string.Join('/', parts, 0, parts.Length - 1);
                MakeOpaque(dir, prefix);
                return;
            }

            if (name.StartsWith(".wh.", StringComparison.Ordinal))
            {
                string hidden = name[4..];
                if (hidden.Length == 0 || hidden is "." or "..") throw Fail("refused: a whiteout of nothing");
                string hiddenKey = parts.Length == 1 ? hidden : string.Join('/', parts, 0, parts.Length - 1) + "/" + hidden;
                if (!_thisLayer.Contains(hiddenKey)) Remove(dir, hidden, hiddenKey);
                return;
            }

            Mark(parts);
            uint existing = Native.LStatMode(dir, name, out int errno);
            if (errno != 0 && errno != Native.ENOENT) throw Fail($"stat: {Native.Describe(errno)}");
            bool exists = errno == 0;
            bool isDir = entry.EntryType == TarEntryType.Directory;
            if (exists && !(isDir && (existing & Native.SIfMt) == Native.SIfDir)) Remove(dir, name, key);

            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (!exists || (existing & Native.SIfMt) != Native.SIfDir)
                        Check(Native.MkdirAt(dir, name, 0x1C0 /* 0700 */), "mkdir");
                    _directories[key] = ((uint)entry.Mode & 0xFFF, Atime(entry), entry.ModificationTime);
                    Chown(dir, name, entry);
                    SetXattrs(dir, name, entry);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    WriteFile(dir, name, entry);
                    break;
                case TarEntryType.SymbolicLink:
                    if (entry.LinkName.Length == 0 || entry.LinkName.Contains('\0')) throw Fail("refused: a symlink with an empty target");
                    Check(Native.SymlinkAt(entry.LinkName, dir, name), "symlink");
                    Chown(dir, name, entry);
                    SetXattrs(dir, name, entry);
                    SetTimes(dir, name, Atime(entry), entry.ModificationTime);
                    break;
                case TarEntryType.HardLink:
                    Link(dir, name, entry);
                    break;
                case TarEntryType.Fifo or TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                    MakeNode(dir, name, entry);
                    break;
                default:
                    throw Fail($"refused: unsupported entry type {entry.EntryType}");
            }
        }
        finally
        {
            Native.Close(dir);
        }
    }

    // Opaque: drop what lower layers left in the directory; keep what this layer already wrote.
    private void MakeOpaque(int dir, string prefix)
    {
        int fd = Native.OpenAt(dir, ".", Native.ORdOnly | Native.ODirectory | Native.OCloExec, 0);
        if (fd < 0) throw Fail($"open: {Native.Describe(Native.Errno)}");
        try
        {
            foreach (string child in SafeRoot.List(fd))
            {
                string childKey = prefix.Length == 0 ? child : prefix + "/" + child;
                if (!_thisLayer.Contains(childKey)) Remove(fd, child, childKey);
                else if ((Native.LStatMode(fd, child, out _) & Native.SIfMt) == Native.SIfDir)
                {
                    int sub = Native.OpenAt(fd, child, Native.OPath | Native.ODirectory | Native.ONoFollow | Native.OCloExec, 0);
                    if (sub < 0) continue;
                    try
                    {
                        MakeOpaque(sub, childKey);
                    }
                    finally
                    {
                        Native.Close(sub);
                    }
                }
            }
        }
        finally
        {
            Native.Close(fd);
        }
    }

    // The layer's own paths and their ancestors: an opaque marker later in the layer keeps them.
    private void Mark(string[] parts)
    {
        string key = "";
        foreach (string part in parts)
        {
            key = key.Length == 0 ? part : key + "/" + part;
            _thisLayer.Add(key);
        }
    }

    private void Remove(int dir, string name, string key)
    {
        try
        {
            if ((Native.LStatMode(dir, name, out _) & Native.SIfMt) == Native.SIfDir)
            {
                string prefix = key + "/";
                foreach (string k in _directories.Keys.Where(k => k == key || k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
                    _directories.Remove(k);
            }

            SafeRoot.RemoveTree(dir, name);
        }
        catch (IOException e)
        {
            throw Fail($"cannot remove what a lower layer put there: {e.Message}");
        }
    }

    private int OpenParent(string[] parts, bool create)
    {
        int fd = root.OpenDirectory(parts, parts.Length - 1, create);
        if (fd >= 0) return fd;
        throw Fail(-fd switch
        {
            Native.EXDEV => "refused: its directory resolves outside the image (through a symlink or \"..\")",
            Native.ELOOP => "refused: its directory goes through a symlink that cannot be followed safely (a loop, a magic link, or any symlink on kernels without openat2)",
            Native.ENOTDIR => "refused: a component of its directory is not a directory",
            Native.ENOENT => "its directory does not exist",
            var e => $"cannot open its directory: {Native.Describe(e)}",
        });
    }

    private void Check(int rc, string what)
    {
        if (rc != 0) throw Fail($"{what}: {Native.Describe(Native.Errno)}");
    }

    private void WriteFile(int dir, string name, TarEntry entry)
    {
        int fd = Native.OpenAt(dir, name, Native.OWrOnly | Native.OCreat | Native.OExcl | Native.ONoFollow | Native.OCloExec, 0x180 /* 0600 */);
        if (fd < 0) throw Fail($"create: {Native.Describe(Native.Errno)}");
        try
        {
            long length = entry.Length, offset = 0;
            Stream? data = entry.DataStream;
            while (offset < length)
            {
                options.Cancel.ThrowIfCancellationRequested();
                // Fill a whole chunk before writing: every write starts 4 KiB-aligned, so each
                // whole page reaches DedupFs's inline dedup as one page.
                int want = (int)Math.Min(Chunk, length - offset), got = 0;
                while (got < want)
                {
                    int n = data?.Read(_buffer, got, want - got) ?? 0;
                    if (n == 0) throw Fail($"truncated: the header says {length} bytes, the data ends after {offset + got}");
                    got += n;
                }

                WriteSkippingZeroPages(fd, got, offset);
                offset += got;
                Report(force: false);
            }

            if (Native.FTruncate(fd, length) != 0) throw Fail($"truncate: {Native.Describe(Native.Errno)}");
            _logical += length;
        }
        finally
        {
            Native.Close(fd);
        }

        Chown(dir, name, entry);
        if (Native.FchmodAt(dir, name, (uint)entry.Mode & 0xFFF, Native.AtSymlinkNoFollow) != 0) throw Fail($"chmod: {Native.Describe(Native.Errno)}");
        SetXattrs(dir, name, entry);
        SetTimes(dir, name, Atime(entry), entry.ModificationTime);
    }

    // All-zero pages stay holes: they read as zeros and store nothing.
    private void WriteSkippingZeroPages(int fd, int count, long offset)
    {
        int start = 0;
        while (start < count)
        {
            while (start < count && IsZero(start, Math.Min(Page, count - start))) start += Page;
            if (start >= count) break;
            int end = start + Page;
            while (end < count && !IsZero(end, Math.Min(Page, count - end))) end += Page;
            end = Math.Min(end, count);
            fixed (byte* p = &_buffer[start])
            {
                int done = 0;
                while (done < end - start)
                {
                    nint n = Native.PWrite(fd, p + done, (nuint)(end - start - done), offset + start + done);
                    if (n < 0) throw Fail($"write: {Native.Describe(Native.Errno)}");
                    done += (int)n;
                }
            }

            start = end;
        }
    }

    private bool IsZero(int start, int length) => !_buffer.AsSpan(start, length).ContainsAnyExcept((byte)0);

    private void Link(int dir, string name, TarEntry entry)
    {
        string[] target = ImagePath.Split(entry.LinkName, out string? why) ?? throw Fail($"refused: hard link to \"{entry.LinkName}\": {why}, outside the image");
        if (target.Length == 0) throw Fail("refused: hard link to the image root");
        int targetDir = root.OpenDirectory(target, target.Length - 1, create: false);
        if (targetDir < 0) throw Fail($"refused: hard link to \"{entry.LinkName}\", which is not in the image (or resolves outside it)");
        try
        {
            uint mode = Native.LStatMode(targetDir, target[^1], out int errno);
            if (errno != 0) throw Fail($"refused: hard link to \"{entry.LinkName}\", which is not in the image");
            if ((mode & Native.SIfMt) == Native.SIfDir) throw Fail($"refused: hard link to the directory \"{entry.LinkName}\"");
            Check(Native.LinkAt(targetDir, target[^1], dir, name, 0), "link");
        }
        finally
        {
            Native.Close(targetDir);
        }
    }

    private void MakeNode(int dir, string name, TarEntry entry)
    {
        uint type = entry.EntryType switch
        {
            TarEntryType.Fifo => Native.SIfIfo,
            TarEntryType.CharacterDevice => Native.SIfChr,
            _ => Native.SIfBlk,
        };
        ulong dev = type == Native.SIfIfo ? 0 : (entry is PosixTarEntry posix ? Native.MakeDev(posix.DeviceMajor, posix.DeviceMinor) : 0);
        if (Native.MknodAt(dir, name, type | 0x180 /* 0600 */, dev) != 0)
        {
            int e = Native.Errno;
            if (type != Native.SIfIfo && e is Native.EPERM or Native.EACCES)
            {
                _skippedDevices++;
                options.Warning?.Invoke($"layer {_layerIndex + 1}: skipped device node {entry.Name} ({Native.Describe(e)})");
                return;
            }

            throw Fail($"mknod: {Native.Describe(e)}");
        }

        Chown(dir, name, entry);
        if (Native.FchmodAt(dir, name, (uint)entry.Mode & 0xFFF, Native.AtSymlinkNoFollow) != 0) throw Fail($"chmod: {Native.Describe(Native.Errno)}");
        SetXattrs(dir, name, entry);
        SetTimes(dir, name, Atime(entry), entry.ModificationTime);
    }

    private void Chown(int dir, string name, TarEntry entry)
    {
        // Only root can give files away; otherwise everything stays the importer's.
        if (!IsRoot) return;
        if (Native.FchownAt(dir, name, (uint)entry.Uid, (uint)entry.Gid, Native.AtSymlinkNoFollow) != 0)
            throw Fail($"chown: {Native.Describe(Native.Errno)}");
    }

    private void SetXattrs(int dir, string name, TarEntry entry)
    {
        if (entry is not PaxTarEntry pax) return;
        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            string attr;
            byte[] bytes;
            if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
            {
                attr = key["SCHILY.xattr.".Length..];
                // System.Formats.Tar hands PAX values over UTF-8-decoded, which garbles binary
                // values (security.capability, as Go's archive/tar writes it); the guard kept
                // the raw bytes. Should they be missing, a garbled value is better not set.
                if (_guard?.EntryXattrs is { } raw && raw.TryGetValue(attr, out byte[]? exact))
                {
                    bytes = exact;
                }
                else if (value.Contains('\uFFFD'))
                {
                    _skippedXattrs++;
                    options.Warning?.Invoke($"layer {_layerIndex + 1}: {entry.Name}: xattr {attr} has a binary value that cannot be read back exactly; not set");
                    continue;
                }
                else
                {
                    bytes = System.Text.Encoding.UTF8.GetBytes(value);
                }
            }
            else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
            {
                // bsdtar's form: the name URL-encoded, the value base64, so binary values survive.
                attr = Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]);
                try
                {
                    bytes = Convert.FromBase64String(value);
                }
                catch (FormatException)
                {
                    throw Fail($"xattr {attr}: the LIBARCHIVE.xattr value is not base64");
                }
            }
            else
            {
                continue;
            }

            // The parent is held open, so /proc/self/fd/N/name is exactly that entry; lsetxattr
            // does not follow it if it is a symlink.
            fixed (byte* p = bytes)
            {
                if (Native.LSetXattr($"/proc/self/fd/{dir}/{name}", attr, p, (nuint)bytes.Length, 0) != 0)
                {
                    int e = Native.Errno;
                    if (e is Native.EPERM or Native.EOPNOTSUPP or Native.EACCES or Native.E2BIG or Native.ENOSYS)
                    {
                        _skippedXattrs++;
                        options.Warning?.Invoke($"layer {_layerIndex + 1}: {entry.Name}: xattr {attr} not set ({Native.Describe(e)})");
                        continue;
                    }

                    throw Fail($"setxattr {attr}: {Native.Describe(e)}");
                }
            }
        }
    }

    private static DateTimeOffset Atime(TarEntry entry) => entry switch
    {
        PaxTarEntry p when p.ExtendedAttributes.ContainsKey("atime") && TryPaxTime(p.ExtendedAttributes["atime"], out var t) => t,
        GnuTarEntry g when g.AccessTime != default => g.AccessTime,
        _ => entry.ModificationTime,
    };

    private static bool TryPaxTime(string text, out DateTimeOffset time)
    {
        time = default;
        if (!decimal.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out decimal seconds)) return false;
        long ticks = (long)(seconds * TimeSpan.TicksPerSecond);
        time = DateTimeOffset.UnixEpoch.AddTicks(ticks);
        return true;
    }

    private void SetTimes(int dir, string name, DateTimeOffset atime, DateTimeOffset mtime)
    {
        Native.Timespec* times = stackalloc Native.Timespec[2];
        times[0] = ToTimespec(atime);
        times[1] = ToTimespec(mtime);
        if (Native.UtimensAt(dir, name, times, Native.AtSymlinkNoFollow) != 0) throw Fail($"utimensat: {Native.Describe(Native.Errno)}");
    }

    private static Native.Timespec ToTimespec(DateTimeOffset t)
    {
        long ticks = (t - DateTimeOffset.UnixEpoch).Ticks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        return new Native.Timespec { Seconds = seconds, Nanoseconds = rest * 100 };
    }

    /// <summary>Directory modes and times, deepest first, once no more children will be added.</summary>
    public void Finish()
    {
        _layerName = "final directory metadata";
        _entryName = null;
        if (!_directories.ContainsKey("")) _directories[""] = (0x1ED /* 0755 */, default, default);
        foreach (var (key, meta) in _directories.OrderByDescending(d => d.Key.Count(c => c == '/') + (d.Key.Length == 0 ? -1 : 0)))
        {
            _entryName = key.Length == 0 ? "./" : key;
            string[] parts = key.Length == 0 ? [] : key.Split('/');
            int dir = parts.Length == 0 ? root.Fd : root.OpenDirectory(parts, parts.Length - 1, create: false);
            if (dir < 0) continue;
            try
            {
                string name = parts.Length == 0 ? "." : parts[^1];
                if ((Native.LStatMode(dir, name, out int errno) & Native.SIfMt) != Native.SIfDir || errno != 0) continue;
                Check(Native.FchmodAt(dir, name, meta.Mode, 0), "chmod");
                if (meta.Mtime != default) SetTimes(dir, name, meta.Atime, meta.Mtime);
            }
            finally
            {
                if (dir != root.Fd) Native.Close(dir);
            }
        }
    }
}
