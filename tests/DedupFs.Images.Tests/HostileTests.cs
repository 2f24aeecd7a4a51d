using DedupFs.Images.Tests.Support;
using DedupFs.Tests.Support;

namespace DedupFs.Images.Tests;

/// <summary>
/// Images built to escape, to lie or to explode: each is refused with an error that names the
/// layer and entry, nothing lands outside, and DEST (and its temporary sibling) is gone.
/// </summary>
public sealed class HostileTests
{
    private static void Refused(Scratch s, string entry, params Layer[] layers) => Refused(s, entry, new ImportOptions(), layers);

    private static void Refused(Scratch s, string entry, ImportOptions options, params Layer[] layers)
    {
        var files = new List<string>();
        for (int i = 0; i < layers.Length; i++)
        {
            string f = Path.Combine(s.Work, $"hostile{i}.blob");
            File.WriteAllBytes(f, layers[i].Blob);
            files.Add(f);
        }

        using var source = ImageSource.FromLayerFiles(files);
        var e = s.AssertRefused(() => s.Import(source, options), entry);
        Assert.Contains("layer ", e.Message);
    }

    [Fact]
    public void DotDotIsRefused()
    {
        using var s = new Scratch();
        Refused(s, "../outside/evil", Layer.Of(new LayerBuilder().File("ok", "ok").File("../outside/evil", "x")));
        Refused(s, "a/../../evil", Layer.Of(new LayerBuilder().File("a/../../evil", "x")));
    }

    [Fact]
    public void AbsolutePathIsRefused()
    {
        using var s = new Scratch();
        Refused(s, "/evil", Layer.Of(new LayerBuilder().File(Path.Combine(s.Outside, "evil").Replace(s.Outside, "/evil"), "x")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WritingThroughASymlinkThatLeavesIsRefused_SameLayer(bool fallback)
    {
        using var s = new Scratch();
        var options = new ImportOptions { ForceFallbackResolver = fallback };
        Refused(s, "esc/pwned", options, Layer.Of(new LayerBuilder().Symlink("esc", "../../outside").File("esc/pwned", "x")));
        Refused(s, "abs/pwned", options, Layer.Of(new LayerBuilder().Symlink("abs", s.Outside).Dir("abs/pwned")));
    }

    [Fact]
    public void WritingThroughASymlinkThatLeavesIsRefused_AcrossLayers()
    {
        using var s = new Scratch();
        Refused(s, "d/esc/deep/pwned",
            Layer.Of(new LayerBuilder().Dir("d").Symlink("d/esc", s.Outside)),
            Layer.Of(new LayerBuilder().File("d/esc/deep/pwned", "x")));
        Refused(s, "up/.wh.victim",
            Layer.Of(new LayerBuilder().Symlink("up", "../../outside")),
            Layer.Of(new LayerBuilder().Whiteout("up/victim")));
    }

    [Fact]
    public void OpaqueMarkersAndFilesUnderNonDirectoriesAreRefused()
    {
        using var s = new Scratch();
        Refused(s, "up/.wh..wh..opq",
            Layer.Of(new LayerBuilder().Symlink("up", s.Outside)),
            Layer.Of(new LayerBuilder().Opaque("up")));
        Refused(s, "f/x", Layer.Of(new LayerBuilder().File("f", "file").File("f/x", "under a file")));
    }

    [Fact]
    public void WithoutOpenat2EvenInImageSymlinksInTheDirectoryPartAreRefused()
    {
        using var s = new Scratch();
        Refused(s, "lib/x", new ImportOptions { ForceFallbackResolver = true },
            Layer.Of(new LayerBuilder().Dir("usr").Symlink("lib", "usr")),
            Layer.Of(new LayerBuilder().File("lib/x", "x")));
    }

    [Fact]
    public void HardLinksOutsideOrToNothingAreRefused()
    {
        using var s = new Scratch();
        File.WriteAllText(Path.Combine(s.Root, "secret"), "secret");
        Refused(s, "steal", Layer.Of(new LayerBuilder().HardLink("steal", "../secret")));
        Refused(s, "steal2", Layer.Of(new LayerBuilder().HardLink("steal2", Path.Combine(s.Root, "secret"))));
        Refused(s, "dangling", Layer.Of(new LayerBuilder().HardLink("dangling", "not/there")));
        Refused(s, "via",
            Layer.Of(new LayerBuilder().Symlink("up", "..")),
            Layer.Of(new LayerBuilder().HardLink("via", "up/../secret")));
        Refused(s, "via2",
            Layer.Of(new LayerBuilder().Symlink("up", s.Root)),
            Layer.Of(new LayerBuilder().HardLink("via2", "up/secret")));
        Refused(s, "dirlink", Layer.Of(new LayerBuilder().Dir("d").HardLink("dirlink", "d")));
    }

    [Fact]
    public void TruncatedArchiveIsRefusedNamingTheEntry()
    {
        using var s = new Scratch();
        byte[] data = new byte[100_000];
        new Random(3).NextBytes(data);
        byte[] tar = new LayerBuilder().File("first", "ok").File("big/file", data).Tar();
        byte[] cut = tar[..(tar.Length - 60_000)];
        Refused(s, "big/file", Layer.Of(cut, Kind.Plain));
        Refused(s, "big/file", Layer.Of(cut, Kind.Gzip));
        byte[] gz = Layer.Of(tar, Kind.Zstd).Blob;
        Refused(s, "layer 1", new Layer(tar, gz[..(gz.Length / 2)]));
    }

    [Fact]
    public void GarbageIsRefused()
    {
        using var s = new Scratch();
        byte[] junk = new byte[4096];
        new Random(5).NextBytes(junk);
        Refused(s, "layer 1/1", new Layer(junk, junk));
        Refused(s, "layer 1/1", new Layer(junk, [0x1f, 0x8b, .. junk]));
    }

    [Fact]
    public void DecompressionBombsAreRefused()
    {
        using var s = new Scratch();
        var bomb = Layer.Of(new LayerBuilder().File("ok", "fine").File("zeros", new byte[24 << 20]), Kind.Zstd);
        Refused(s, "zeros", new ImportOptions { MaxRatio = 50 }, bomb);
        Refused(s, "zeros", new ImportOptions { MaxSize = 1 << 20 }, bomb);
        // zstd packs 24 MiB of zeros far beyond the default ratio (1000): refused too.
        Refused(s, "zeros", bomb);
        // Within raised limits the same image imports.
        string blob = Path.Combine(s.Work, "bomb.zst");
        File.WriteAllBytes(blob, bomb.Blob);
        using var source = ImageSource.FromLayerFiles([blob]);
        s.Import(source, new ImportOptions { MaxRatio = 1e9 });
        Assert.Equal(24L << 20, new FileInfo(s.P("zeros")).Length);
    }

    [Fact]
    public void HugeMetadataRecordsAreRefusedBeforeTheyAreBuffered()
    {
        using var s = new Scratch();
        // A PAX header that claims 1 GiB of records: the tar reader would allocate all of it.
        byte[] header = Sys.RawHeader("PaxHeaders/bomb", 'x', 1L << 30);
        byte[] first = new LayerBuilder().File("innocent", "x").Tar();
        byte[] tar = [.. first.AsSpan(0, first.Length - 1024), .. header, .. new byte[8192]];
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ImageException>(() => s.ImportLayers(Layer.Of(tar, Kind.Gzip)));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
        Assert.Contains("metadata record", e.Message);
        Assert.Contains("innocent", e.Message);
        Assert.False(Path.Exists(s.Dest));
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Out));
    }

    [Fact]
    public void LayerDigestMismatchIsRefused()
    {
        using var s = new Scratch();
        var good = Layer.Of(new LayerBuilder().File("f", "original"), Kind.Gzip);
        var evil = Layer.Of(new LayerBuilder().File("f", "tampered"), Kind.Gzip);
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"), good);
        // Same size on disk is not required: the blob is replaced under the good digest's name.
        File.WriteAllBytes(Path.Combine(layout, "blobs", "sha256", good.Digest[7..]), evil.Blob);
        using var source = ImageSource.Open(layout, null);
        var e = s.AssertRefused(() => s.Import(source), good.Digest);
        Assert.Contains("digest mismatch", e.Message);
    }

    [Fact]
    public void DiffIdMismatchIsRefused()
    {
        using var s = new Scratch();
        var layer = Layer.Of(new LayerBuilder().File("f", "x"), Kind.Zstd);
        string layout = Path.Combine(s.Work, "oci");
        ImageWriter.Index(layout, ImageWriter.Manifest(layout, [layer], diffIds: ["sha256:" + new string('0', 64)]));
        using var source = ImageSource.Open(layout, null);
        var e = s.AssertRefused(() => s.Import(source), "diff_id mismatch");
        Assert.Contains(layer.Digest, e.Message);
    }

    [Fact]
    public void SizeThatDisagreesWithTheBlobIsRefused()
    {
        using var s = new Scratch();
        var layer = Layer.Of(new LayerBuilder().File("f", "x"), Kind.Gzip);
        string layout = Path.Combine(s.Work, "oci");
        ImageWriter.Index(layout, ImageWriter.Manifest(layout, [layer], size: l => l.Blob.Length + 1));
        using var source = ImageSource.Open(layout, null);
        var e = s.AssertRefused(() => s.Import(source), layer.Digest);
        Assert.Contains("manifest says", e.Message);
    }

    [Fact]
    public void ManifestsThatPointNowhereAreRefusedBeforeAnythingIsWritten()
    {
        using var s = new Scratch();
        var layer = Layer.Of(new LayerBuilder().File("f", "x"));
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"), layer);
        File.Delete(Path.Combine(layout, "blobs", "sha256", layer.Digest[7..]));
        var e = Assert.Throws<ImageException>(() => ImageSource.Open(layout, null));
        Assert.Contains(layer.Digest, e.Message);

        File.WriteAllText(Path.Combine(layout, "index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" + new string('1', 64) + "\",\"size\":2}]}");
        Assert.Contains("not in the image", Assert.Throws<ImageException>(() => ImageSource.Open(layout, null)).Message);

        File.WriteAllText(Path.Combine(layout, "index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:../../../etc/passwd\",\"size\":2}]}");
        Assert.Contains("digest", Assert.Throws<ImageException>(() => ImageSource.Open(layout, null)).Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Out));
    }

    [Fact]
    public void ExistingDestinationIsNeverTouched()
    {
        using var s = new Scratch();
        Directory.CreateDirectory(s.Dest);
        File.WriteAllText(s.P("mine"), "mine");
        var e = Assert.Throws<ImageException>(() => s.ImportLayers(Layer.Of(new LayerBuilder().File("f", "x"))));
        Assert.Contains("already exists", e.Message);
        Assert.Equal(["mine"], Directory.EnumerateFileSystemEntries(s.Dest).Select(Path.GetFileName));
        Assert.Single(Directory.EnumerateFileSystemEntries(s.Out));
    }

    [Fact]
    public void CommandLineExitsNonZeroAndLeavesNothing()
    {
        using var s = new Scratch();
        string blob = Path.Combine(s.Work, "evil.tar");
        File.WriteAllBytes(blob, Layer.Of(new LayerBuilder().Symlink("esc", s.Outside).File("esc/pwned", "x"), Kind.Plain).Blob);
        var (exit, _, error) = Dedupfs.Run("image", "import", "--layer", blob, s.Dest);
        Assert.Equal(1, exit);
        Assert.Contains("esc/pwned", error);
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Out));
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Outside));
    }
}
