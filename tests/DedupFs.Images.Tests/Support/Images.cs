using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DedupFs.Images.Tests.Support;

/// <summary>One layer, built in memory with System.Formats.Tar (PAX headers, like modern image builders).</summary>
internal sealed class LayerBuilder
{
    public static readonly DateTimeOffset Epoch = new(2001, 2, 3, 4, 5, 6, TimeSpan.Zero);
    private readonly MemoryStream _tar = new();
    private readonly TarWriter _writer;

    public LayerBuilder() => _writer = new TarWriter(_tar, TarEntryFormat.Pax, leaveOpen: true);

    private LayerBuilder Add(TarEntryType type, string name, UnixFileMode mode, Action<PaxTarEntry>? configure = null, byte[]? data = null, Dictionary<string, string>? pax = null)
    {
        var entry = pax is null ? new PaxTarEntry(type, name) : new PaxTarEntry(type, name, pax);
        entry.Mode = mode;
        entry.ModificationTime = Epoch;
        configure?.Invoke(entry);
        if (data is not null) entry.DataStream = new MemoryStream(data);
        _writer.WriteEntry(entry);
        return this;
    }

    public LayerBuilder Dir(string name, int mode = 0x1ED, Action<PaxTarEntry>? configure = null, Dictionary<string, string>? pax = null) =>
        Add(TarEntryType.Directory, name, (UnixFileMode)mode, configure, pax: pax);

    public LayerBuilder File(string name, byte[] data, int mode = 0x1A4, Action<PaxTarEntry>? configure = null, Dictionary<string, string>? pax = null) =>
        Add(TarEntryType.RegularFile, name, (UnixFileMode)mode, configure, data, pax);

    public LayerBuilder File(string name, string text, int mode = 0x1A4, Action<PaxTarEntry>? configure = null, Dictionary<string, string>? pax = null) =>
        File(name, Encoding.UTF8.GetBytes(text), mode, configure, pax);

    public LayerBuilder Symlink(string name, string target) => Add(TarEntryType.SymbolicLink, name, (UnixFileMode)0x1FF, e => e.LinkName = target);
    public LayerBuilder HardLink(string name, string target) => Add(TarEntryType.HardLink, name, (UnixFileMode)0x1A4, e => e.LinkName = target);
    public LayerBuilder Fifo(string name) => Add(TarEntryType.Fifo, name, (UnixFileMode)0x1A4);

    public LayerBuilder CharDevice(string name, int major, int minor) => Add(TarEntryType.CharacterDevice, name, (UnixFileMode)0x1B6, e =>
    {
        e.DeviceMajor = major;
        e.DeviceMinor = minor;
    });

    public LayerBuilder Whiteout(string name)
    {
        string dir = Path.GetDirectoryName(name) ?? "";
        return File((dir.Length == 0 ? "" : dir + "/") + ".wh." + Path.GetFileName(name), []);
    }

    public LayerBuilder Opaque(string dir) => File(dir.TrimEnd('/') + "/.wh..wh..opq", []);

    public byte[] Tar()
    {
        _writer.Dispose();
        return _tar.ToArray();
    }
}

public enum Kind
{
    Plain,
    Gzip,
    Zstd,
}

/// <summary>A layer's tar and the blob that carries it (plain, gzip or zstd).</summary>
internal sealed record Layer(byte[] Tar, byte[] Blob)
{
    public string DiffId => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Tar));
    public string Digest => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Blob));

    public static Layer Of(LayerBuilder builder, Kind kind = Kind.Gzip) => Of(builder.Tar(), kind);

    public static Layer Of(byte[] tar, Kind kind)
    {
        var output = new MemoryStream();
        switch (kind)
        {
            case Kind.Plain:
                output.Write(tar);
                break;
            case Kind.Gzip:
                using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(tar);
                break;
            case Kind.Zstd:
                using (var zs = new ZstdSharp.CompressionStream(output, 3, leaveOpen: true)) zs.Write(tar);
                break;
        }

        return new Layer(tar, output.ToArray());
    }
}

/// <summary>Writes images in the formats the importer reads.</summary>
internal static class ImageWriter
{
    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    private static string Blob(string layout, byte[] bytes)
    {
        string digest = Sha(bytes);
        string dir = Path.Combine(layout, "blobs", "sha256");
        Directory.CreateDirectory(dir);
        System.IO.File.WriteAllBytes(Path.Combine(dir, digest[7..]), bytes);
        return digest;
    }

    public static byte[] Json(object o) => JsonSerializer.SerializeToUtf8Bytes(o);

    /// <summary>An image manifest (with its config and layers) in the layout; returns its descriptor.</summary>
    public static Dictionary<string, object> Manifest(string layout, IReadOnlyList<Layer> layers, string arch = "amd64", string[]? diffIds = null, Func<Layer, long>? size = null)
    {
        foreach (var l in layers) Blob(layout, l.Blob);
        byte[] config = Json(new { architecture = arch, os = "linux", rootfs = new { type = "layers", diff_ids = diffIds ?? layers.Select(l => l.DiffId).ToArray() } });
        string configDigest = Blob(layout, config);
        byte[] manifest = Json(new
        {
            schemaVersion = 2,
            mediaType = "application/vnd.oci.image.manifest.v1+json",
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = configDigest, size = config.Length },
            layers = layers.Select(l => new { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = l.Digest, size = size?.Invoke(l) ?? l.Blob.Length }).ToArray(),
        });
        string digest = Blob(layout, manifest);
        return new Dictionary<string, object>
        {
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["digest"] = digest,
            ["size"] = manifest.Length,
            ["platform"] = new Dictionary<string, string> { ["os"] = "linux", ["architecture"] = arch },
        };
    }

    public static void Index(string layout, params Dictionary<string, object>[] manifests)
    {
        Directory.CreateDirectory(layout);
        System.IO.File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        System.IO.File.WriteAllBytes(Path.Combine(layout, "index.json"), Json(new { schemaVersion = 2, manifests }));
    }

    public static string OciLayout(string layout, params Layer[] layers)
    {
        Index(layout, Manifest(layout, layers));
        return layout;
    }

    public static string Archive(string directory, string archive)
    {
        TarFile.CreateFromDirectory(directory, archive, includeBaseDirectory: false);
        return archive;
    }

    /// <summary>The classic `docker save` layout: manifest.json, a config, and LAYERID/layer.tar.</summary>
    public static string DockerSave(string directory, params Layer[] layers)
    {
        Directory.CreateDirectory(directory);
        var paths = new List<string>();
        for (int i = 0; i < layers.Length; i++)
        {
            string id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("layer" + i)));
            Directory.CreateDirectory(Path.Combine(directory, id));
            System.IO.File.WriteAllBytes(Path.Combine(directory, id, "layer.tar"), layers[i].Blob);
            paths.Add(id + "/layer.tar");
        }

        byte[] config = Json(new { architecture = "amd64", os = "linux", rootfs = new { type = "layers", diff_ids = layers.Select(l => l.DiffId).ToArray() } });
        string configName = Sha(config)[7..] + ".json";
        System.IO.File.WriteAllBytes(Path.Combine(directory, configName), config);
        System.IO.File.WriteAllBytes(Path.Combine(directory, "manifest.json"), Json(new[] { new { Config = configName, RepoTags = new[] { "test:latest" }, Layers = paths } }));
        return directory;
    }
}

/// <summary>A fresh temporary directory: "work" for the image, "out" (the destination's parent), "outside" (must stay empty).</summary>
internal sealed class Scratch : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("dedupfs-images-").FullName;
    public string Work => Dir("work");
    public string Out => Dir("out");
    public string Outside => Dir("outside");
    public string Dest => Path.Combine(Out, "rootfs");

    private string Dir(string name)
    {
        string d = Path.Combine(Root, name);
        Directory.CreateDirectory(d);
        return d;
    }

    public string P(string relative) => Path.Combine(Dest, relative);

    public ImportResult Import(ImageSource source, ImportOptions? options = null) => ImageImporter.Import(source, Dest, options ?? new ImportOptions());

    public ImportResult ImportLayers(params Layer[] layers)
    {
        var files = new List<string>();
        for (int i = 0; i < layers.Length; i++)
        {
            string f = Path.Combine(Work, $"layer{i}.blob");
            System.IO.File.WriteAllBytes(f, layers[i].Blob);
            files.Add(f);
        }

        using var source = ImageSource.FromLayerFiles(files);
        return Import(source);
    }

    /// <summary>The import was refused naming <paramref name="entry"/>, and left nothing anywhere.</summary>
    public ImageException AssertRefused(Action import, string entry)
    {
        var e = Assert.Throws<ImageException>(import);
        Assert.Contains(entry, e.Message);
        Assert.False(Path.Exists(Dest), "DEST exists after a refused import");
        Assert.Empty(Directory.EnumerateFileSystemEntries(Out));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Outside));
        return e;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static unsafe partial class Sys
{
    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint LGetXattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    public static string? GetXattr(string path, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint n = LGetXattr(path, name, buffer, 4096);
        return n < 0 ? null : Encoding.UTF8.GetString(buffer, (int)n);
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>A ustar header block, by hand: for sizes and types TarWriter will not write.</summary>
    public static byte[] RawHeader(string name, char type, long size)
    {
        byte[] header = new byte[512];
        void Put(int at, string text) => Encoding.ASCII.GetBytes(text).CopyTo(header, at);
        Put(0, name);
        Put(100, "0000644");
        Put(108, "0000000");
        Put(116, "0000000");
        Put(124, Convert.ToString(size, 8).PadLeft(11, '0'));
        Put(136, "00000000000");
        header[156] = (byte)type;
        Put(257, "ustar\0");
        Put(263, "00");
        header.AsSpan(148, 8).Fill((byte)' ');
        Put(148, Convert.ToString(header.Sum(b => b), 8).PadLeft(6, '0') + "\0 ");
        return header;
    }

    public static byte[]? GetXattrBytes(string path, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint n = LGetXattr(path, name, buffer, 4096);
        return n < 0 ? null : new ReadOnlySpan<byte>(buffer, (int)n).ToArray();
    }

    public readonly record struct Stat(uint Mode, uint Uid, uint Gid, uint Nlink, ulong Ino, long Mtime, uint RdevMajor, uint RdevMinor)
    {
        public uint Type => Mode & 0xF000;
        public uint Perm => Mode & 0xFFF;
    }

    public static Stat LStat(string path)
    {
        byte* b = stackalloc byte[256];
        if (Statx(-100, path, 0x100, 0xFFF, b) != 0) throw new IOException($"{path}: errno {Marshal.GetLastPInvokeError()}");
        return new Stat(*(ushort*)(b + 28), *(uint*)(b + 20), *(uint*)(b + 24), *(uint*)(b + 16), *(ulong*)(b + 32), *(long*)(b + 112), *(uint*)(b + 128), *(uint*)(b + 132));
    }

    public static bool IsRoot => Native.GetEuid() == 0;
}
