using System.Text.Json;
using DedupFs.Images.Tests.Support;
using DedupFs.Tests.Support;

namespace DedupFs.Images.Tests;

/// <summary>On a real DedupFs mount: the second import of an image stores (almost) nothing new.</summary>
public sealed class MountTests
{
    private static long StoredBytes(CliMount mount)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(mount.PathOf(".dedupfs/stats.json")));
        var v = doc.RootElement.GetProperty("stored_bytes");
        return v.ValueKind == JsonValueKind.Number ? v.GetInt64() : long.Parse(v.GetString()!);
    }

    [Fact]
    public void ImportingTwiceStoresAlmostNothingNew()
    {
        using var s = new Scratch();
        using var mount = new CliMount();
        byte[] lib = new byte[2 << 20];
        new Random(11).NextBytes(lib);
        byte[] app = new byte[(1 << 20) + 777];
        new Random(12).NextBytes(app);
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"),
            Layer.Of(new LayerBuilder().Dir("usr").Dir("usr/lib").File("usr/lib/libc.so", lib, 0x1ED).HardLink("usr/lib/libc.so.6", "usr/lib/libc.so").Fifo("fifo")),
            Layer.Of(new LayerBuilder().File("app", app, 0x1ED).File("usr/lib/copy-of-libc", lib), Kind.Zstd));

        long before = StoredBytes(mount);
        var (exit, output, error) = Dedupfs.Run("image", "import", layout, mount.PathOf("img1"));
        Assert.True(exit == 0, error);
        long first = StoredBytes(mount) - before;
        // The copy of libc in the second layer is shared by inline dedup with the first.
        Assert.InRange(first, lib.Length + app.Length - 4096, lib.Length + app.Length + 8192);
        Assert.Contains("newly stored", output);

        (exit, output, error) = Dedupfs.Run("image", "import", layout, mount.PathOf("img2"));
        Assert.True(exit == 0, error);
        long second = StoredBytes(mount) - before - first;
        Assert.InRange(second, 0, 8192);
        Assert.Contains("newly stored", output);
        Assert.Equal(lib, File.ReadAllBytes(mount.PathOf("img2/usr/lib/libc.so.6")));
        Assert.Equal(app, File.ReadAllBytes(mount.PathOf("img2/app")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(mount.MountPoint, ".img*"));

        // A container root per clone, still one stored copy.
        (exit, _, error) = Dedupfs.Run("clone", mount.PathOf("img1"), mount.PathOf("c1"));
        Assert.True(exit == 0, error);
        Assert.Equal(app, File.ReadAllBytes(mount.PathOf("c1/app")));
        Assert.InRange(StoredBytes(mount) - before - first, 0, 8192);
    }

    [Fact]
    public void RefusedImportLeavesTheMountUntouched()
    {
        using var s = new Scratch();
        using var mount = new CliMount();
        Directory.CreateDirectory(mount.PathOf("outside"));
        string blob = Path.Combine(s.Work, "evil.tar.gz");
        File.WriteAllBytes(blob, Layer.Of(new LayerBuilder().File("ok", new byte[100_000]).Symlink("esc", "../outside").File("esc/pwned", "x")).Blob);
        var (exit, _, error) = Dedupfs.Run("image", "import", "--layer", blob, mount.PathOf("img"));
        Assert.Equal(1, exit);
        Assert.Contains("esc/pwned", error);
        Assert.Equal(["outside"], Directory.EnumerateFileSystemEntries(mount.MountPoint).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFileSystemEntries(mount.PathOf("outside")));
    }
}
