using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace DedupFs.Images;

/// <summary>One layer to apply: where its bytes come from and what they must hash to.</summary>
/// <param name="Name">How errors name the layer (its digest or file name).</param>
/// <param name="Digest">The blob's digest from the manifest ("sha256:..."), or null when unknown.</param>
/// <param name="Size">The blob's size from the manifest, or null.</param>
/// <param name="DiffId">The uncompressed tar's digest from the config's rootfs.diff_ids, or null.</param>
public sealed record LayerRef(string Name, Func<Stream> Open, string? Digest, long? Size, string? DiffId);

/// <summary>os/arch[/variant], as in an OCI index's platform objects.</summary>
public sealed record Platform(string Os, string Architecture, string? Variant)
{
    public static Platform Parse(string text)
    {
        string[] parts = text.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0))
            throw new ImageException($"--platform {text}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7");
        return new Platform(parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
    }

    public static Platform Host => new("linux", RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var other => other.ToString().ToLowerInvariant(),
    }, null);

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

/// <summary>Files of an image by relative path: a directory, or the members of an uncompressed tar.</summary>
internal interface IImageFiles : IDisposable
{
    bool Exists(string path);
    Stream Open(string path);
}

internal sealed class DirectoryFiles(string root) : IImageFiles
{
    private string Full(string path) =>
        Path.Combine(root, string.Join('/', ImagePath.Split(path, out string? why) ?? throw new ImageException($"{path}: {why}")));

    public bool Exists(string path) => File.Exists(Full(path));
    public Stream Open(string path) => new FileStream(Full(path), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);

    public void Dispose()
    {
    }
}

/// <summary>
/// An image archive (OCI layout or docker save) read in place: one pass records where each
/// member's data starts, then each blob is read through a window of the file, so a multi-GiB
/// archive is neither extracted nor held in memory.
/// </summary>
internal sealed class TarFiles : IImageFiles
{
    private readonly string _archive;
    private readonly Dictionary<string, (long Offset, long Length)> _members = new(StringComparer.Ordinal);

    public TarFiles(string archive)
    {
        _archive = archive;
        using var file = new FileStream(archive, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
        using var reader = new TarReader(file, leaveOpen: true);
        try
        {
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                string[]? parts = ImagePath.Split(entry.Name, out _);
                if (parts is null) continue;
                long offset = entry.DataOffset;
                if (offset < 0 || offset + entry.Length > file.Length)
                    throw new ImageException($"{archive}: member {entry.Name} is truncated ({entry.Length} bytes declared)");
                _members[string.Join('/', parts)] = (offset, entry.Length);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or ArgumentException)
        {
            throw new ImageException($"{archive}: not a readable tar archive: {e.Message}");
        }
    }

    private static string Key(string path) => string.Join('/', ImagePath.Split(path, out _) ?? []);

    public bool Exists(string path) => _members.ContainsKey(Key(path));

    public Stream Open(string path)
    {
        var (offset, length) = _members.TryGetValue(Key(path), out var m) ? m : throw new ImageException($"{path}: not in {_archive}");
        return new FileWindowStream(_archive, offset, length);
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// Finds the layers of an image: an OCI image layout (directory or tar), a `docker save`
/// tarball (or its extracted directory), or an explicit list of layer tarballs. Every JSON blob
/// is checked against its descriptor's digest and size before it is believed.
/// </summary>
public sealed class ImageSource : IDisposable
{
    private const long MaxJsonBytes = 16 * 1024 * 1024;
    private readonly IImageFiles? _files;

    public IReadOnlyList<LayerRef> Layers { get; }
    public string Kind { get; }

    private ImageSource(IImageFiles? files, IReadOnlyList<LayerRef> layers, string kind)
    {
        _files = files;
        Layers = layers;
        Kind = kind;
    }

    public void Dispose() => _files?.Dispose();

    public static ImageSource FromLayerFiles(IEnumerable<string> paths)
    {
        var layers = new List<LayerRef>();
        foreach (string path in paths)
        {
            if (!File.Exists(path)) throw new ImageException($"layer {path}: no such file");
            string p = path;
            layers.Add(new LayerRef(Path.GetFileName(p), () => new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan), null, null, null));
        }

        if (layers.Count == 0) throw new ImageException("no layers given");
        return new ImageSource(null, layers, "layer list");
    }

    public static ImageSource Open(string source, Platform? platform)
    {
        IImageFiles files;
        string where;
        if (Directory.Exists(source))
        {
            files = new DirectoryFiles(source);
            where = "directory";
        }
        else if (File.Exists(source))
        {
            using (var probe = File.OpenRead(source))
            {
                Span<byte> magic = stackalloc byte[4];
                int n = probe.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
                if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b || n == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]))
                    throw new ImageException($"{source}: a compressed image archive; decompress it first (gunzip / zstd -d): blobs are read in place");
            }

            files = new TarFiles(source);
            where = "archive";
        }
        else
        {
            throw new ImageException($"{source}: no such file or directory");
        }

        try
        {
            if (files.Exists("index.json")) return new ImageSource(files, OciLayers(files, platform), $"OCI layout {where}");
            if (files.Exists("manifest.json")) return new ImageSource(files, DockerLayers(files, platform), $"docker save {where}");
            throw new ImageException($"{source}: neither an OCI image layout (index.json) nor a docker save (manifest.json); for layer tarballs use --layer");
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    private static List<LayerRef> OciLayers(IImageFiles files, Platform? platform)
    {
        using var index = ReadJson(files, "index.json", null);
        var descriptor = Select(index.RootElement, platform, "index.json");
        for (int depth = 0; ; depth++)
        {
            if (depth > 4) throw new ImageException("index nesting deeper than 4 levels");
            using var doc = ReadBlobJson(files, descriptor, "manifest");
            if (doc.RootElement.TryGetProperty("manifests", out _))
            {
                descriptor = Select(doc.RootElement, platform, Str(descriptor, "digest"));
                continue;
            }

            var manifest = doc.RootElement;
            if (!manifest.TryGetProperty("config", out var config) || !manifest.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array)
                throw new ImageException($"manifest {Str(descriptor, "digest")}: no config or layers");
            using var configDoc = ReadBlobJson(files, config.Clone(), "config");
            var diffIds = DiffIds(configDoc.RootElement);
            var result = new List<LayerRef>();
            int i = 0;
            foreach (var layer in layers.EnumerateArray())
            {
                string digest = Str(layer, "digest");
                string path = BlobPath(digest);
                long size = layer.TryGetProperty("size", out var s) && s.TryGetInt64(out long v) ? v : -1;
                if (!files.Exists(path)) throw new ImageException($"layer {i + 1} ({digest}): the manifest points at a blob that is not in the image");
                result.Add(new LayerRef(digest, () => files.Open(path), digest, size < 0 ? null : size, i < diffIds.Count ? diffIds[i] : null));
                i++;
            }

            if (diffIds.Count != result.Count)
                throw new ImageException($"config lists {diffIds.Count} diff_ids for {result.Count} layers");
            return result;
        }
    }

    private static List<LayerRef> DockerLayers(IImageFiles files, Platform? platform)
    {
        using var doc = ReadJson(files, "manifest.json", null);
        if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.GetArrayLength() != 1)
            throw new ImageException("manifest.json: expected exactly one image (save one image per tarball)");
        var image = doc.RootElement[0];
        string configPath = Str(image, "Config");
        if (!files.Exists(configPath)) throw new ImageException($"manifest.json: config {configPath} is not in the image");
        using var config = ReadJson(files, configPath, DigestFromPath(configPath));
        if (platform is not null && config.RootElement.TryGetProperty("architecture", out var arch) &&
            (arch.GetString() != platform.Architecture || (config.RootElement.TryGetProperty("os", out var os) && os.GetString() != platform.Os)))
            throw new ImageException($"the image is for {config.RootElement.GetProperty("os").GetString()}/{arch.GetString()}, not {platform}");
        var diffIds = DiffIds(config.RootElement);
        if (!image.TryGetProperty("Layers", out var layers) || layers.ValueKind != JsonValueKind.Array)
            throw new ImageException("manifest.json: no Layers");
        var result = new List<LayerRef>();
        int i = 0;
        foreach (var layer in layers.EnumerateArray())
        {
            string path = layer.GetString() ?? throw new ImageException("manifest.json: a layer is not a string");
            if (ImagePath.Split(path, out string? why) is null) throw new ImageException($"manifest.json: layer {path}: {why}");
            if (!files.Exists(path)) throw new ImageException($"layer {i + 1} ({path}): manifest.json points at a file that is not in the image");
            string? digest = DigestFromPath(path);
            result.Add(new LayerRef(digest ?? path, () => files.Open(path), digest, null, i < diffIds.Count ? diffIds[i] : null));
            i++;
        }

        if (diffIds.Count != result.Count)
            throw new ImageException($"config lists {diffIds.Count} diff_ids for {result.Count} layers");
        return result;
    }

    private static List<string> DiffIds(JsonElement config)
    {
        if (!config.TryGetProperty("rootfs", out var rootfs) || !rootfs.TryGetProperty("diff_ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
            throw new ImageException("config: no rootfs.diff_ids");
        var list = ids.EnumerateArray().Select(e => e.GetString() ?? "").ToList();
        foreach (string id in list) Digest.Parse(id);
        return list;
    }

    // An index names several images; take the one for the platform (the host's unless told).
    private static JsonElement Select(JsonElement index, Platform? wanted, string where)
    {
        if (!index.TryGetProperty("manifests", out var manifests) || manifests.ValueKind != JsonValueKind.Array)
            throw new ImageException($"{where}: no manifests");
        var platform = wanted ?? Platform.Host;
        var all = manifests.EnumerateArray().ToList();
        var matching = all.Where(m => m.TryGetProperty("platform", out var p) && Matches(p, platform, wanted is not null)).ToList();
        if (matching.Count > 0) return matching[0].Clone();
        var unplatformed = all.Where(m => !m.TryGetProperty("platform", out _)).DistinctBy(m => Str(m, "digest")).ToList();
        if (unplatformed.Count == 1 && (wanted is null || all.Count == 1)) return unplatformed[0].Clone();
        if (all.Count == 0) throw new ImageException($"{where}: the index lists no images");
        var available = all.Where(m => m.TryGetProperty("platform", out _)).Select(m => Describe(m.GetProperty("platform"))).ToList();
        if (available.Count == 0) throw new ImageException($"{where}: {all.Count} images and none says its platform");
        throw new ImageException($"{where}: no image for {platform} (available: {string.Join(", ", available)}); choose one with --platform");
    }

    private static bool Matches(JsonElement p, Platform want, bool variantMatters)
    {
        string? os = p.TryGetProperty("os", out var o) ? o.GetString() : null;
        string? arch = p.TryGetProperty("architecture", out var a) ? a.GetString() : null;
        string? variant = p.TryGetProperty("variant", out var v) ? v.GetString() : null;
        if (os != want.Os || arch != want.Architecture) return false;
        return !variantMatters || want.Variant is null || variant == want.Variant;
    }

    private static string Describe(JsonElement p) =>
        $"{(p.TryGetProperty("os", out var o) ? o.GetString() : "?")}/{(p.TryGetProperty("architecture", out var a) ? a.GetString() : "?")}" +
        (p.TryGetProperty("variant", out var v) ? "/" + v.GetString() : "");

    private static string Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new ImageException($"descriptor without {name}");

    private static string BlobPath(string digest)
    {
        var d = Digest.Parse(digest);
        return $"blobs/{d.Algorithm}/{d.Hex}";
    }

    private static string? DigestFromPath(string path)
    {
        string[] parts = path.Split('/');
        if (parts.Length >= 2 && parts[^2] is "sha256" or "sha512" && Digest.TryParse(parts[^2] + ":" + parts[^1], out _))
            return parts[^2] + ":" + parts[^1];
        return null;
    }

    private static JsonDocument ReadBlobJson(IImageFiles files, JsonElement descriptor, string what)
    {
        string digest = Str(descriptor, "digest");
        string path = BlobPath(digest);
        if (!files.Exists(path)) throw new ImageException($"{what} {digest}: points at a blob that is not in the image");
        var doc = ReadJson(files, path, digest);
        return doc;
    }

    private static JsonDocument ReadJson(IImageFiles files, string path, string? digest)
    {
        using var stream = files.Open(path);
        var buffer = new MemoryStream();
        byte[] chunk = new byte[64 * 1024];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            buffer.Write(chunk, 0, n);
            if (buffer.Length > MaxJsonBytes) throw new ImageException($"{path}: larger than {MaxJsonBytes} bytes, not a manifest");
        }

        byte[] bytes = buffer.ToArray();
        if (digest is not null)
        {
            var d = Digest.Parse(digest);
            string actual = d.Compute(bytes);
            if (actual != digest) throw new ImageException($"{path}: digest mismatch: expected {digest}, got {actual}");
        }

        try
        {
            return JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new ImageException($"{path}: not JSON: {e.Message}");
        }
    }
}

/// <summary>An OCI digest, "algorithm:hex"; only sha256 and sha512, lowercase hex of the right length.</summary>
public readonly record struct Digest(string Algorithm, string Hex)
{
    public HashAlgorithmName HashName => Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;

    public static bool TryParse(string text, out Digest digest)
    {
        digest = default;
        int colon = text.IndexOf(':');
        if (colon < 0) return false;
        string alg = text[..colon], hex = text[(colon + 1)..];
        int length = alg switch { "sha256" => 64, "sha512" => 128, _ => -1 };
        if (length < 0 || hex.Length != length || !hex.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        digest = new Digest(alg, hex);
        return true;
    }

    public static Digest Parse(string text) =>
        TryParse(text, out var d) ? d : throw new ImageException($"digest {text}: not sha256:<64 hex> or sha512:<128 hex>");

    public string Compute(byte[] bytes) =>
        Algorithm + ":" + Convert.ToHexStringLower(Algorithm == "sha512" ? SHA512.HashData(bytes) : SHA256.HashData(bytes));

    public override string ToString() => Algorithm + ":" + Hex;
}

/// <summary>An import refused; the message names the layer and entry, for the user.</summary>
public sealed class ImageException(string message) : Exception(message);
