using DedupFs.Images.Tests.Support;

namespace DedupFs.Images.Tests;

/// <summary>The OCI "applying changesets" rules, one by one, on a plain directory.</summary>
public sealed class ChangesetTests
{
    private const uint Dir = 0x4000, Reg = 0x8000, Lnk = 0xA000, Fifo = 0x1000, Chr = 0x2000;

    [Fact]
    public void WhiteoutRemovesFilesAndWholeDirectoriesOfLowerLayers()
    {
        using var s = new Scratch();
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Dir("a").File("a/x", "x").File("a/y", "y").Dir("d").Dir("d/sub").File("d/sub/deep", "deep")),
            Layer.Of(new LayerBuilder().Whiteout("a/x").Whiteout("d").Whiteout("a/never-existed").Whiteout("no/such/dir/x")));
        Assert.False(Path.Exists(s.P("a/x")));
        Assert.Equal("y", File.ReadAllText(s.P("a/y")));
        Assert.False(Path.Exists(s.P("d")));
        Assert.False(Path.Exists(s.P("no")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(s.Dest, ".wh.*", SearchOption.AllDirectories));
    }

    [Fact]
    public void WhiteoutThenRecreateInALaterLayer()
    {
        using var s = new Scratch();
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Dir("d").File("d/old", "old")),
            Layer.Of(new LayerBuilder().Whiteout("d")),
            Layer.Of(new LayerBuilder().Dir("d").File("d/new", "new")));
        Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(s.P("d")).Select(Path.GetFileName));
    }

    [Fact]
    public void OpaqueDirectoryHidesLowerContentButKeepsThisLayers()
    {
        using var s = new Scratch();
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Dir("o").File("o/old", "old").Dir("o/sub").File("o/sub/deep", "deep").File("keep", "k")),
            // "o/new" and "o/sub/mine" come before the marker in the tar: they belong to this layer and stay.
            Layer.Of(new LayerBuilder().Dir("o").File("o/new", "new").File("o/sub/mine", "mine").Opaque("o")));
        Assert.Equal(["new", "sub"], Directory.EnumerateFileSystemEntries(s.P("o")).Select(Path.GetFileName).Order());
        Assert.Equal(["mine"], Directory.EnumerateFileSystemEntries(s.P("o/sub")).Select(Path.GetFileName));
        Assert.Equal("k", File.ReadAllText(s.P("keep")));
        Assert.False(Path.Exists(s.P("o/.wh..wh..opq")));
    }

    [Fact]
    public void DirectoryOverDirectoryMergesAndTakesNewMetadata_OtherTypesReplace()
    {
        using var s = new Scratch();
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Dir("d").File("d/a", "a").File("f2d", "file").Dir("d2f").File("d2f/x", "x").Symlink("l", "d")),
            Layer.Of(new LayerBuilder().Dir("d", 0x1C0).File("d/b", "b").Dir("f2d").File("d2f", "now a file").File("l", "now a file too")));
        Assert.Equal(["a", "b"], Directory.EnumerateFileSystemEntries(s.P("d")).Select(Path.GetFileName).Order());
        Assert.Equal(0x1C0u, Sys.LStat(s.P("d")).Perm);
        Assert.Equal(Dir, Sys.LStat(s.P("f2d")).Type);
        Assert.Equal("now a file", File.ReadAllText(s.P("d2f")));
        Assert.Equal(Reg, Sys.LStat(s.P("l")).Type);
        Assert.Equal("a", File.ReadAllText(s.P("d/a")));
    }

    [Fact]
    public void HardLinksShareAnInodeAcrossLayers()
    {
        using var s = new Scratch();
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Dir("bin").File("bin/busybox", "bb", 0x1ED).HardLink("bin/sh", "bin/busybox")),
            Layer.Of(new LayerBuilder().HardLink("bin/ls", "./bin/busybox")));
        var bb = Sys.LStat(s.P("bin/busybox"));
        Assert.Equal(bb.Ino, Sys.LStat(s.P("bin/sh")).Ino);
        Assert.Equal(bb.Ino, Sys.LStat(s.P("bin/ls")).Ino);
        Assert.Equal(3u, bb.Nlink);
    }

    [Fact]
    public void SymlinksAreStoredAsWrittenAndNeverFollowed()
    {
        using var s = new Scratch();
        string outsideTarget = Path.Combine(s.Outside, "target");
        s.ImportLayers(
            Layer.Of(new LayerBuilder().Symlink("abs", outsideTarget).Symlink("rel", "../../../etc/shadow").Dir("usr").Dir("usr/lib").Symlink("lib", "usr/lib")),
            // Replaces the symlink itself; never writes through it.
            Layer.Of(new LayerBuilder().File("abs", "replaced").File("lib/inside", "through an in-image symlink")));
        Assert.Equal("../../../etc/shadow", new FileInfo(s.P("rel")).LinkTarget);
        Assert.Equal(Reg, Sys.LStat(s.P("abs")).Type);
        Assert.False(File.Exists(outsideTarget));
        Assert.Equal(Lnk, Sys.LStat(s.P("lib")).Type);
        Assert.Equal("through an in-image symlink", File.ReadAllText(s.P("usr/lib/inside")));
    }

    [Fact]
    public void ModesIncludingSetuidSetgidSticky_OwnersAndTimes()
    {
        using var s = new Scratch();
        var t = new DateTimeOffset(1999, 12, 31, 23, 59, 58, TimeSpan.Zero);
        s.ImportLayers(Layer.Of(new LayerBuilder()
            .Dir("tmp", 0x3FF) // 01777
            .Dir("shared", 0x5FD, e => e.ModificationTime = t) // 02775
            .File("shared/su", "x", 0x9ED, e => // 04755, owned by 1234:5678
            {
                e.Uid = 1234;
                e.Gid = 5678;
                e.ModificationTime = t;
            })
            .Dir("ro", 0x16D) // 0555, children still land (modes are applied last)
            .File("ro/child", "c", 0x124)));
        Assert.Equal(0x3FFu, Sys.LStat(s.P("tmp")).Perm);
        Assert.Equal(0x5FDu, Sys.LStat(s.P("shared")).Perm);
        var su = Sys.LStat(s.P("shared/su"));
        Assert.Equal(0x9EDu, su.Perm);
        Assert.Equal(t.ToUnixTimeSeconds(), su.Mtime);
        // The directory's mtime survives the file created in it afterwards.
        Assert.Equal(t.ToUnixTimeSeconds(), Sys.LStat(s.P("shared")).Mtime);
        Assert.Equal(LayerBuilder.Epoch.ToUnixTimeSeconds(), Sys.LStat(s.P("tmp")).Mtime);
        Assert.Equal(0x16Du, Sys.LStat(s.P("ro")).Perm);
        Assert.Equal("c", File.ReadAllText(s.P("ro/child")));
        if (Sys.IsRoot)
        {
            Assert.Equal(1234u, su.Uid);
            Assert.Equal(5678u, su.Gid);
        }
    }

    [Fact]
    public void RootEntrySetsTheRootsMode()
    {
        using var s = new Scratch();
        s.ImportLayers(Layer.Of(new LayerBuilder().Dir("./", 0x1E8).File("./f", "f")));
        Assert.Equal(0x1E8u, Sys.LStat(s.Dest).Perm);
        Assert.Equal("f", File.ReadAllText(s.P("f")));
    }

    [Fact]
    public void XattrsFromPaxHeaders()
    {
        using var s = new Scratch();
        s.ImportLayers(Layer.Of(new LayerBuilder()
            .Dir("d", pax: new() { ["SCHILY.xattr.user.dir"] = "on a directory" })
            .File("d/f", "f", pax: new() { ["SCHILY.xattr.user.mime_type"] = "text/plain", ["SCHILY.xattr.user.other"] = "2" })));
        Assert.Equal("text/plain", Sys.GetXattr(s.P("d/f"), "user.mime_type"));
        Assert.Equal("2", Sys.GetXattr(s.P("d/f"), "user.other"));
        Assert.Equal("on a directory", Sys.GetXattr(s.P("d"), "user.dir"));
    }

    [Fact]
    public void BinaryXattrsSurviveExactly()
    {
        using var s = new Scratch();
        // TarWriter only writes text, so write a placeholder and patch raw bytes over it, as
        // Go's archive/tar writes security.capability: bytes that are not UTF-8.
        byte[] tar = new LayerBuilder()
            .File("schily", "f", pax: new() { ["SCHILY.xattr.user.cap"] = "\u00ff\u00fe" })
            .File("plain", "f")
            .File("bsd", "f", pax: new() { ["LIBARCHIVE.xattr.user.b%20in"] = Convert.ToBase64String([0xff, 0, 1]) })
            .Tar();
        byte[] placeholder = [0xc3, 0xbf, 0xc3, 0xbe];
        int at = tar.AsSpan().IndexOf(placeholder);
        Assert.True(at > 0);
        byte[] binary = [0x01, 0xff, 0x00, 0xfe];
        binary.CopyTo(tar, at);
        var result = s.ImportLayers(Layer.Of(tar, Kind.Gzip));
        Assert.Equal(binary, Sys.GetXattrBytes(s.P("schily"), "user.cap"));
        Assert.Null(Sys.GetXattrBytes(s.P("plain"), "user.cap"));
        Assert.Equal([0xff, 0, 1], Sys.GetXattrBytes(s.P("bsd"), "user.b in"));
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void FifosAndDeviceNodes()
    {
        using var s = new Scratch();
        var result = s.ImportLayers(Layer.Of(new LayerBuilder().Dir("dev").Fifo("dev/fifo").CharDevice("dev/null", 1, 3)));
        Assert.Equal(Fifo, Sys.LStat(s.P("dev/fifo")).Type);
        if (Sys.IsRoot)
        {
            var dev = Sys.LStat(s.P("dev/null"));
            Assert.Equal(Chr, dev.Type);
            Assert.Equal((1u, 3u), (dev.RdevMajor, dev.RdevMinor));
            Assert.Empty(result.Warnings);
        }
        else
        {
            Assert.False(Path.Exists(s.P("dev/null")));
            Assert.Contains(result.Warnings, w => w.Contains("device node"));
        }
    }

    [Fact]
    public void LongNamesAndLongLinkTargets()
    {
        using var s = new Scratch();
        string deep = string.Join('/', Enumerable.Range(0, 6).Select(i => new string((char)('a' + i), 120)));
        string longName = deep + "/" + new string('z', 250);
        string longTarget = string.Concat(Enumerable.Repeat("../", 40)) + new string('t', 200);
        s.ImportLayers(Layer.Of(new LayerBuilder().File(longName, "long").Symlink(deep + "/link", longTarget).HardLink("hard", longName)));
        Assert.Equal("long", File.ReadAllText(s.P(longName)));
        Assert.Equal(longTarget, new FileInfo(s.P(deep + "/link")).LinkTarget);
        Assert.Equal("long", File.ReadAllText(s.P("hard")));
    }

    [Fact]
    public void GnuLongNamesAndLinks()
    {
        using var s = new Scratch();
        string name = new string('g', 180) + "/" + new string('n', 200);
        var tar = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Gnu, leaveOpen: true))
        {
            writer.WriteEntry(new System.Formats.Tar.GnuTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream("gnu"u8.ToArray()) });
            writer.WriteEntry(new System.Formats.Tar.GnuTarEntry(System.Formats.Tar.TarEntryType.SymbolicLink, "l") { LinkName = name });
        }

        s.ImportLayers(Layer.Of(tar.ToArray(), Kind.Plain));
        Assert.Equal("gnu", File.ReadAllText(s.P(name)));
        Assert.Equal("gnu", File.ReadAllText(s.P("l")));
    }

    [Fact]
    public void MissingParentsAreCreated()
    {
        using var s = new Scratch();
        s.ImportLayers(Layer.Of(new LayerBuilder().File("no/dir/entries/f", "f")));
        Assert.Equal("f", File.ReadAllText(s.P("no/dir/entries/f")));
    }
}
