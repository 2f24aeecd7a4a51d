using DedupFs.Images.Tests.Support;
using DedupFs.Tests.Support;

namespace DedupFs.Images.Tests;

/// <summary>Every kind of SOURCE gives the same tree; compression is found by content, not by name.</summary>
public sealed class SourceTests
{
    private static Layer[] TwoLayers(Kind kind) =>
    [
        Layer.Of(new LayerBuilder().Dir("etc").File("etc/os-release", "ID=test\n").File("etc/gone", "x"), kind),
        Layer.Of(new LayerBuilder().Whiteout("etc/gone").File("etc/added", "added"), kind),
    ];

    private static void AssertTree(Scratch s)
    {
        Assert.Equal("ID=test\n", File.ReadAllText(s.P("etc/os-release")));
        Assert.Equal("added", File.ReadAllText(s.P("etc/added")));
        Assert.False(Path.Exists(s.P("etc/gone")));
        Assert.Equal(["rootfs"], Directory.EnumerateFileSystemEntries(s.Out).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData(Kind.Plain)]
    [InlineData(Kind.Gzip)]
    [InlineData(Kind.Zstd)]
    public void OciLayoutDirectory(Kind kind)
    {
        using var s = new Scratch();
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"), TwoLayers(kind));
        using var source = ImageSource.Open(layout, null);
        var result = s.Import(source);
        AssertTree(s);
        Assert.Equal(2, result.Layers);
        Assert.Equal(5, result.Entries);
        Assert.Equal(8 + 1 + 5, result.LogicalBytes);
    }

    [Fact]
    public void OciArchive()
    {
        using var s = new Scratch();
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"), TwoLayers(Kind.Zstd));
        string archive = ImageWriter.Archive(layout, Path.Combine(s.Work, "oci.tar"));
        using var source = ImageSource.Open(archive, null);
        s.Import(source);
        AssertTree(s);
    }

    [Fact]
    public void DockerSaveTarball()
    {
        using var s = new Scratch();
        string dir = ImageWriter.DockerSave(Path.Combine(s.Work, "docker"), TwoLayers(Kind.Plain));
        string archive = ImageWriter.Archive(dir, Path.Combine(s.Work, "docker.tar"));
        using (var source = ImageSource.Open(archive, null))
        {
            Assert.StartsWith("docker save", source.Kind);
            s.Import(source);
        }

        AssertTree(s);
        Directory.Delete(s.Dest, recursive: true);
        using (var extracted = ImageSource.Open(dir, null)) s.Import(extracted);
        AssertTree(s);
        Assert.Contains("linux/amd64", Assert.Throws<ImageException>(() => ImageSource.Open(dir, Platform.Parse("linux/arm64"))).Message);
    }

    [Fact]
    public void LayerListWithMixedCompression()
    {
        using var s = new Scratch();
        var layers = TwoLayers(Kind.Gzip);
        s.ImportLayers(layers[0], Layer.Of(layers[1].Tar, Kind.Zstd));
        AssertTree(s);
    }

    [Fact]
    public void IndexPicksTheHostPlatformUnlessTold()
    {
        using var s = new Scratch();
        string layout = Path.Combine(s.Work, "multi");
        var arm = ImageWriter.Manifest(layout, [Layer.Of(new LayerBuilder().File("arch", "arm64"))], "arm64");
        var amd = ImageWriter.Manifest(layout, [Layer.Of(new LayerBuilder().File("arch", "amd64"))], "amd64");
        ImageWriter.Index(layout, arm, amd);

        using (var source = ImageSource.Open(layout, null)) s.Import(source);
        Assert.Equal(Platform.Host.Architecture, File.ReadAllText(s.P("arch")));
        Directory.Delete(s.Dest, recursive: true);

        using (var source = ImageSource.Open(layout, Platform.Parse("linux/arm64"))) s.Import(source);
        Assert.Equal("arm64", File.ReadAllText(s.P("arch")));

        var e = Assert.Throws<ImageException>(() => ImageSource.Open(layout, Platform.Parse("linux/s390x")));
        Assert.Contains("linux/arm64", e.Message);
        Assert.Contains("linux/amd64", e.Message);
        Assert.Throws<ImageException>(() => Platform.Parse("linux"));
    }

    [Fact]
    public void NestedIndexIsFollowed()
    {
        using var s = new Scratch();
        string layout = Path.Combine(s.Work, "nested");
        var amd = ImageWriter.Manifest(layout, [Layer.Of(new LayerBuilder().File("f", "nested"))], "amd64");
        byte[] inner = ImageWriter.Json(new { schemaVersion = 2, mediaType = "application/vnd.oci.image.index.v1+json", manifests = new[] { amd } });
        string digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(inner));
        File.WriteAllBytes(Path.Combine(layout, "blobs", "sha256", digest[7..]), inner);
        ImageWriter.Index(layout, new Dictionary<string, object> { ["mediaType"] = "application/vnd.oci.image.index.v1+json", ["digest"] = digest, ["size"] = inner.Length });
        using var source = ImageSource.Open(layout, null);
        s.Import(source);
        Assert.Equal("nested", File.ReadAllText(s.P("f")));
    }

    [Fact]
    public void LargeFileStreamsInChunksAndZeroPagesBecomeHoles()
    {
        using var s = new Scratch();
        byte[] data = new byte[3 * 1024 * 1024 + 5000];
        new Random(7).NextBytes(data.AsSpan(0, 1024 * 1024));
        data[^1] = 1; // a zero run in the middle, a non-zero tail in a partial page
        s.ImportLayers(Layer.Of(new LayerBuilder().File("big", data), Kind.Zstd));
        Assert.Equal(data, File.ReadAllBytes(s.P("big")));
    }

    [Fact]
    public async Task WithoutRootOwnersStayAndDeviceNodesAreSkippedWithAWarning()
    {
        if (!Sys.IsRoot || !File.Exists("/usr/bin/setpriv")) return; // needs root to become someone else
        using var s = new Scratch();
        string blob = Path.Combine(s.Work, "layer.tar");
        File.WriteAllBytes(blob, Layer.Of(new LayerBuilder().Dir("dev").CharDevice("dev/null", 1, 3).Fifo("dev/fifo")
            .File("su", "x", 0x9ED, e => e.Uid = 1234), Kind.Plain).Blob);
        foreach (string dir in new[] { s.Root, s.Work, s.Out, s.Outside }) File.SetUnixFileMode(dir, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(blob, (UnixFileMode)0x1A4);
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "env", $"HOME={s.Work}", "dotnet", Dedupfs.Dll, "image", "import", "--layer", blob, s.Dest })
            start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string error = await p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == 0, error + await stdout);
        Assert.Contains("skipped device node dev/null", error);
        Assert.False(Path.Exists(s.P("dev/null")));
        Assert.Equal(0x1000u, Sys.LStat(s.P("dev/fifo")).Type);
        var su = Sys.LStat(s.P("su"));
        Assert.Equal((65534u, 0x9EDu), (su.Uid, su.Perm));
    }

    [Fact]
    public async Task TerminatedImportLeavesNothing()
    {
        using var s = new Scratch();
        string fifo = Path.Combine(s.Work, "layer.fifo");
        Assert.Equal(0, Sys.MkFifo(fifo, 0x180));
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { Dedupfs.Dll, "image", "import", "--layer", fifo, s.Dest }) start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        bool signalled = false;
        // A layer that never ends: one 1 GiB member fed slowly through a FIFO, until the
        // importer has made its temporary directory and been sent SIGTERM.
        using (var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 0))
        {
            byte[] chunk = new byte[64 * 1024];
            chunk.AsSpan().Fill(0x55);
            var until = DateTime.UtcNow.AddSeconds(60);
            try
            {
                writer.Write(Sys.RawHeader("endless", '0', 1L << 30));
                while (!p.HasExited && DateTime.UtcNow < until)
                {
                    writer.Write(chunk);
                    if (!signalled && Directory.EnumerateFileSystemEntries(s.Out).Any())
                    {
                        Assert.Equal(0, Sys.Kill(p.Id, 15));
                        signalled = true;
                    }
                }
            }
            catch (IOException)
            {
                // the importer stopped reading
            }
        }

        Assert.True(p.WaitForExit(60_000));
        Assert.True(signalled);
        Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {await stderr}{await stdout}");
        Assert.Contains("interrupted", await stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Out));
    }

    [Fact]
    public void LayersStreamInBoundedMemory()
    {
        using var s = new Scratch();
        const long size = 96L << 20;
        string blob = Path.Combine(s.Work, "big.tar.gz");
        using (var file = File.Create(blob))
        using (var gz = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest))
        using (var tar = new System.Formats.Tar.TarWriter(gz, System.Formats.Tar.TarEntryFormat.Pax))
        {
            tar.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "big") { DataStream = new PatternStream(size) });
        }

        using var source = ImageSource.FromLayerFiles([blob]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = s.Import(source);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(size, result.LogicalBytes);
        Assert.True(allocated < 16 << 20, $"importing a {size >> 20} MiB layer allocated {allocated >> 20} MiB");
        using var written = File.OpenRead(s.P("big"));
        using var expected = new PatternStream(size);
        byte[] a = new byte[1 << 20], b = new byte[1 << 20];
        int n;
        while ((n = expected.ReadAtLeast(a, a.Length, throwOnEndOfStream: false)) > 0)
        {
            Assert.Equal(n, written.ReadAtLeast(b, n, throwOnEndOfStream: false));
            Assert.True(a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n)));
        }
    }

    /// <summary>Bytes made up as they are read: a big layer without a big buffer.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get; set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - Position);
            for (int i = 0; i < n; i++)
            {
                long p = Position + i;
                buffer[offset + i] = (byte)((p >> 12) * 31 + (p & 0xFF) + 1);
            }

            Position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void CommandLineImportsAndReports()
    {
        using var s = new Scratch();
        string layout = ImageWriter.OciLayout(Path.Combine(s.Work, "oci"), TwoLayers(Kind.Gzip));
        var (exit, output, error) = Dedupfs.Run("image", "import", layout, s.Dest);
        Assert.True(exit == 0, error);
        Assert.Contains("2 layer(s), 5 entries", output);
        AssertTree(s);

        (exit, _, error) = Dedupfs.Run("image", "import", layout, s.Dest);
        Assert.Equal(1, exit);
        Assert.Contains("already exists", error);

        (exit, _, error) = Dedupfs.Run("image", "import", "--layer", Path.Combine(s.Work, "nope"), Path.Combine(s.Out, "x"));
        Assert.Equal(1, exit);
        Assert.Contains("nope", error);
        Assert.False(Path.Exists(Path.Combine(s.Out, "x")));
    }
}
