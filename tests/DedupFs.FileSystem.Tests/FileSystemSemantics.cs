// POSIX semantics through a real mount, in both cache modes: every test runs once with
// cache=shared (direct I/O, mmap allowed) and once with cache=kernel (the kernel's page cache).
// Each test gets its own store and mount point.
using System.Text;
using DedupFs.FileSystem.Tests.Support;
using static DedupFs.Tests.Support.Posix;

namespace DedupFs.FileSystem.Tests;

public sealed class SharedCacheSemantics() : FileSystemSemantics(CacheMode.Shared);

public sealed class KernelCacheSemantics() : FileSystemSemantics(CacheMode.Kernel);

public abstract class FileSystemSemantics : IDisposable
{
    protected FileSystemSemantics(CacheMode mode) => M = new DedupMount(mode);

    protected DedupMount M { get; }

    public void Dispose() => M.Dispose();

    protected string P(string relative) => M[relative];

    protected static byte[] Random(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    protected long Stat(string name) => long.Parse(File.ReadAllText(P(".dedupfs/" + name)).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Data_round_trips_with_holes_and_beyond_4_GiB()
    {
        byte[] data = Random(300_001, 1);
        File.WriteAllBytes(P("f"), data);
        Assert.Equal(data, File.ReadAllBytes(P("f")));

        int fd = OpenOrThrow(P("sparse"), OCreat | ORdwr);
        try
        {
            Assert.Equal(4, Pwrite(fd, "tail"u8, 5L << 30));
            Assert.Equal(3, Pwrite(fd, "mid"u8, (4L << 30) + 4093)); // crosses a page boundary past 4 GiB
            Assert.Equal((5L << 30) + 4, Statx(P("sparse")).Size);
            Assert.All(ReadAll(fd, 1L << 30, 65536), b => Assert.Equal(0, b));
            Assert.Equal("tail", Encoding.ASCII.GetString(ReadAll(fd, 5L << 30, 100)));
            Assert.Equal("mid", Encoding.ASCII.GetString(ReadAll(fd, (4L << 30) + 4093, 3)));
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void Create_honours_o_excl_o_trunc_and_o_append()
    {
        int fd = Open(P("x"), OCreat | OExcl | OWronly);
        Assert.True(fd >= 0);
        Assert.Equal(11, Write(fd, "hello world"u8));
        Close(fd);
        Assert.Equal(-EEXIST, Open(P("x"), OCreat | OExcl | OWronly));

        fd = OpenOrThrow(P("x"), OWronly | OAppend);
        Assert.Equal(1, Write(fd, "!"u8));
        Close(fd);
        Assert.Equal("hello world!", File.ReadAllText(P("x")));

        fd = OpenOrThrow(P("x"), OWronly | OTrunc);
        Assert.Equal(0, Statx(P("x")).Size);
        Assert.Equal(2, Write(fd, "ok"u8));
        Close(fd);
        Assert.Equal("ok", File.ReadAllText(P("x")));
    }

    [Fact]
    public void Names_longer_than_255_bytes_are_refused()
    {
        Assert.Equal(-ENAMETOOLONG, Open(P(new string('n', 256)), OCreat | OWronly));
        int fd = OpenOrThrow(P(new string('n', 255)), OCreat | OWronly);
        Close(fd);
        Assert.Equal(ENAMETOOLONG, Mkdir(P(new string('d', 256))));
    }

    [Fact]
    public void Directories_count_links_and_refuse_removal_when_not_empty()
    {
        Assert.Equal(0, Mkdir(P("d")));
        Assert.Equal(0, Mkdir(P("d/sub")));
        File.WriteAllText(P("d/file"), "x");
        Assert.Equal(3u, Statx(P("d")).Nlink);
        Assert.Equal(ENOTEMPTY, Rmdir(P("d")));
        Assert.Equal(ENOTDIR, Rmdir(P("d/file")));
        Assert.Equal(EISDIR, Unlink(P("d/sub")));
        Assert.Equal(EEXIST, Mkdir(P("d/sub")));
        Assert.Equal(0, Rmdir(P("d/sub")));
        Assert.Equal(2u, Statx(P("d")).Nlink);
        Assert.Equal(0, Unlink(P("d/file")));
        Assert.Equal(0, Rmdir(P("d")));
        Assert.False(Directory.Exists(P("d")));
        Assert.Equal(ENOENT, Rmdir(P("d")));
    }

    [Fact]
    public void Rename_follows_the_replace_noreplace_and_exchange_rules()
    {
        File.WriteAllText(P("a"), "A");
        File.WriteAllText(P("b"), "B");
        Assert.Equal(EEXIST, Rename2(P("a"), P("b"), RenameNoReplace));
        Assert.Equal(0, Rename2(P("a"), P("b"), RenameExchange));
        Assert.Equal("B", File.ReadAllText(P("a")));
        Assert.Equal("A", File.ReadAllText(P("b")));
        Assert.Equal(0, Rename2(P("a"), P("b"), 0)); // replaces
        Assert.False(File.Exists(P("a")));
        Assert.Equal("B", File.ReadAllText(P("b")));
        Assert.Equal(ENOENT, Rename2(P("a"), P("c"), RenameExchange));

        Assert.Equal(0, Mkdir(P("d1")));
        Assert.Equal(0, Mkdir(P("d2")));
        Assert.Equal(0, Mkdir(P("full")));
        File.WriteAllText(P("full/f"), "f");
        Assert.Equal(ENOTDIR, Rename2(P("d1"), P("b"), 0));
        Assert.Equal(EISDIR, Rename2(P("b"), P("d1"), 0));
        int notEmpty = Rename2(P("d1"), P("full"), 0);
        Assert.True(notEmpty is ENOTEMPTY or EEXIST, $"errno {notEmpty}");
        Assert.Equal(0, Rename2(P("d1"), P("d2"), 0)); // a directory over an empty directory
        Assert.False(Directory.Exists(P("d1")));
        Assert.Equal(4u, Statx(M.MountPoint).Nlink); // root: its name, ".", d2/.., full/..

        // A directory moving to another parent moves its ".." link.
        Assert.Equal(0, Rename2(P("d2"), P("full/d2"), 0));
        Assert.Equal(3u, Statx(P("full")).Nlink);
        Assert.Equal(3u, Statx(M.MountPoint).Nlink);
        // Exchange a directory and a file across parents.
        Assert.Equal(0, Rename2(P("full/d2"), P("b"), RenameExchange));
        Assert.True(Directory.Exists(P("b")));
        Assert.Equal("B", File.ReadAllText(P("full/d2")));
        Assert.Equal(2u, Statx(P("full")).Nlink);
        Assert.Equal(4u, Statx(M.MountPoint).Nlink);
    }

    [Fact]
    public void Hard_links_and_symlinks()
    {
        File.WriteAllText(P("orig"), "data");
        Assert.Equal(0, Link(P("orig"), P("alias")));
        Assert.Equal(2u, Statx(P("orig")).Nlink);
        Assert.Equal(Statx(P("orig")).Ino, Statx(P("alias")).Ino);
        File.AppendAllText(P("alias"), "+more");
        Assert.Equal("data+more", File.ReadAllText(P("orig")));
        Assert.Equal(0, Unlink(P("orig")));
        Assert.Equal(1u, Statx(P("alias")).Nlink);
        Assert.Equal(EEXIST, Link(P("alias"), P("alias")));

        Assert.Equal(0, Symlink("alias", P("sym")));
        Assert.Equal("alias", new FileInfo(P("sym")).LinkTarget);
        Assert.Equal(0xA000u, Statx(P("sym")).Mode & 0xF000);
        Assert.Equal(5, Statx(P("sym")).Size);
        Assert.Equal("data+more", File.ReadAllText(P("sym")));
        Assert.Equal(0, Mkdir(P("dir")));
        Assert.Equal(EPERM, Link(P("dir"), P("dirlink")));
    }

    [Fact]
    public void Special_files_are_made_by_mknod()
    {
        Assert.Equal(0, Mknod(P("fifo"), 0x1000 | 0x1A4));
        Assert.Equal(0x1000u, Statx(P("fifo")).Mode & 0xF000);
        Assert.Equal(0, Mknod(P("null"), 0x2000 | 0x1B6, (1 << 8) | 3)); // makedev(1, 3)
        var st = Statx(P("null"));
        Assert.Equal(0x2000u, st.Mode & 0xF000);
        Assert.Equal((1u, 3u), (st.RdevMajor, st.RdevMinor));
        Assert.Equal(0, Mknod(P("sock"), 0xC000 | 0x1A4));
        Assert.Equal(0xC000u, Statx(P("sock")).Mode & 0xF000);
        Assert.Equal(0, Mknod(P("plain"), 0x8000 | 0x1A4));
        Assert.Equal(0L, Statx(P("plain")).Size);
    }

    [Fact]
    public void Xattrs_follow_create_replace_size_and_namespace_rules()
    {
        File.WriteAllText(P("x"), "");
        Assert.Equal(0, SetXattr(P("x"), "user.a", "one"u8.ToArray()));
        Assert.Equal("one", Encoding.ASCII.GetString(GetXattr(P("x"), "user.a", out _)!));
        Assert.Equal(EEXIST, SetXattr(P("x"), "user.a", "two"u8.ToArray(), XattrCreate));
        Assert.Equal(ENODATA, SetXattr(P("x"), "user.b", "two"u8.ToArray(), XattrReplace));
        Assert.Equal(0, SetXattr(P("x"), "user.a", "three"u8.ToArray(), XattrReplace));
        Assert.Equal(5, GetXattr(P("x"), "user.a", out _, bufferSize: 0)!.Length);
        Assert.Null(GetXattr(P("x"), "user.a", out int errno, bufferSize: 2));
        Assert.Equal(ERANGE, errno);
        Assert.Equal(E2BIG, SetXattr(P("x"), "user.big", new byte[65537]));
        Assert.Equal(0, SetXattr(P("x"), "user.max", new byte[65536]));
        Assert.Equal(65536, GetXattr(P("x"), "user.max", out _, bufferSize: 70000)!.Length);
        Assert.Equal(EOPNOTSUPP, SetXattr(P("x"), "other.a", "v"u8.ToArray()));
        Assert.Equal(0, SetXattr(P("x"), "trusted.t", "t"u8.ToArray()));
        Assert.Equal(["trusted.t", "user.a", "user.max"], ListXattr(P("x")).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(0, RemoveXattr(P("x"), "user.a"));
        Assert.Equal(ENODATA, RemoveXattr(P("x"), "user.a"));
        Assert.Null(GetXattr(P("x"), "user.a", out errno));
        Assert.Equal(ENODATA, errno);
    }

    [Fact]
    public void Fallocate_modes_and_seek_data_and_hole()
    {
        int fd = OpenOrThrow(P("f"), OCreat | ORdwr);
        try
        {
            Assert.Equal(0, Fallocate(fd, 0, 0, 1 << 20));
            Assert.Equal(1 << 20, Statx(P("f")).Size);
            Assert.Equal(-ENXIO, Lseek(fd, 0, SeekData));
            Assert.Equal(4096, Pwrite(fd, Random(4096, 2), 256 << 10));
            Assert.Equal(256 << 10, Lseek(fd, 0, SeekData));
            Assert.Equal(260 << 10, Lseek(fd, 256 << 10, SeekHole));
            Assert.Equal(0, Lseek(fd, 0, SeekHole));
            Assert.Equal(-ENXIO, Lseek(fd, 2 << 20, SeekData));

            Assert.Equal(0, Fallocate(fd, FallocPunchHole | FallocKeepSize, 256 << 10, 4096));
            Assert.Equal(-ENXIO, Lseek(fd, 0, SeekData));
            Assert.Equal(1 << 20, Statx(P("f")).Size);

            Assert.Equal(0, Fallocate(fd, FallocKeepSize, 1 << 20, 1 << 20));
            Assert.Equal(1 << 20, Statx(P("f")).Size);

            Assert.Equal(8192, Pwrite(fd, Random(8192, 3), 0));
            Assert.Equal(0, Fallocate(fd, FallocZeroRange, 100, 1000));
            byte[] head = ReadAll(fd, 0, 8192);
            Assert.All(head.AsSpan(100, 1000).ToArray(), b => Assert.Equal(0, b));
            Assert.Equal(Random(8192, 3)[1100], head[1100]);
            Assert.Equal(0, Fallocate(fd, FallocZeroRange, (1 << 20) - 10, 100));
            Assert.Equal((1 << 20) + 90, Statx(P("f")).Size);

            Assert.Equal(EOPNOTSUPP, Fallocate(fd, FallocCollapse, 0, 4096));
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void Copy_file_range_shares_pages_and_copies_stay_independent()
    {
        byte[] data = Random((1 << 20) + 100, 4);
        File.WriteAllBytes(P("src"), data);
        long sharingBefore = Stat("pages_sharing");
        int src = OpenOrThrow(P("src"), ORdonly);
        int dst = OpenOrThrow(P("dst"), OCreat | ORdwr);
        try
        {
            long done = 0;
            while (done < data.Length)
            {
                long n = CopyFileRange(src, done, dst, done, data.Length - done);
                Assert.True(n > 0, $"copy_file_range: {n}");
                done += n;
            }
        }
        finally
        {
            Close(src);
            Close(dst);
        }
        Assert.Equal(data, File.ReadAllBytes(P("dst")));
        Assert.True(Stat("pages_sharing") - sharingBefore >= 256, "the copy shares the source's pages");

        // Writing to the copy breaks sharing for the copy only.
        long cow = Stat("cow_ksm");
        using (var f = new FileStream(P("dst"), FileMode.Open, FileAccess.Write))
        {
            f.Write("changed"u8);
        }
        Assert.Equal(data, File.ReadAllBytes(P("src")));
        Assert.Equal("changed", Encoding.ASCII.GetString(File.ReadAllBytes(P("dst")), 0, 7));
        Assert.True(Stat("cow_ksm") > cow);

        // Offsets that differ within a page cannot share: a byte copy.
        src = OpenOrThrow(P("src"), ORdonly);
        dst = OpenOrThrow(P("odd"), OCreat | ORdwr);
        try
        {
            Assert.Equal(5000, CopyFileRange(src, 10, dst, 0, 5000));
        }
        finally
        {
            Close(src);
            Close(dst);
        }
        Assert.Equal(data.AsSpan(10, 5000).ToArray(), File.ReadAllBytes(P("odd")));
    }

    [Fact]
    public void Cp_inside_the_mount_is_a_reflink()
    {
        byte[] data = Random(512 << 10, 5);
        File.WriteAllBytes(P("big"), data);
        long sharing = Stat("pages_sharing");
        var psi = new System.Diagnostics.ProcessStartInfo("cp", [P("big"), P("copy")]) { RedirectStandardError = true };
        using (var cp = System.Diagnostics.Process.Start(psi)!)
        {
            Assert.True(cp.WaitForExit(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, cp.ExitCode);
        }
        Assert.Equal(data, File.ReadAllBytes(P("copy")));
        Assert.True(Stat("pages_sharing") - sharing >= 128);
    }

    [Fact]
    public void An_unlinked_open_file_stays_readable_until_closed()
    {
        File.WriteAllBytes(P("gone"), Random(10000, 6));
        int fd = OpenOrThrow(P("gone"), ORdwr);
        try
        {
            Assert.Equal(0, Unlink(P("gone")));
            Assert.False(File.Exists(P("gone")));
            Assert.Equal(Random(10000, 6), ReadAll(fd, 0, 20000));
            Assert.Equal(3, Pwrite(fd, "new"u8, 0));
            Assert.Equal("new", Encoding.ASCII.GetString(ReadAll(fd, 0, 3)));
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void O_tmpfile_can_be_linked_in()
    {
        Assert.Equal(0, Mkdir(P("t")));
        int fd = Open(P("t"), OTmpFile | ORdwr, 0x180);
        Assert.True(fd >= 0, $"O_TMPFILE: errno {-fd}");
        try
        {
            Assert.Empty(Directory.GetFileSystemEntries(P("t")));
            Assert.Equal(4, Write(fd, "temp"u8));
            Assert.Equal(0, LinkFd(fd, P("t/named")));
        }
        finally
        {
            Close(fd);
        }
        Assert.Equal("temp", File.ReadAllText(P("t/named")));
        Assert.Equal(1u, Statx(P("t/named")).Nlink);
    }

    [Fact]
    public void Times_have_nanoseconds_and_follow_utime_now_and_omit()
    {
        File.WriteAllText(P("t"), "x");
        var created = Statx(P("t"));
        Assert.Equal(0x800u, created.Mask & 0x800); // STATX_BTIME
        Assert.True(created.Btime.TotalNs > 0 && created.Btime.TotalNs <= created.Mtime.TotalNs);

        Assert.Equal(0, Utimens(P("t"), 1000, 123456789, 2000, 987654321));
        var st = Statx(P("t"));
        Assert.Equal(new StatxTime(1000, 123456789), st.Atime);
        Assert.Equal(new StatxTime(2000, 987654321), st.Mtime);

        Assert.Equal(0, Utimens(P("t"), 0, UtimeOmit, 3000, 5));
        st = Statx(P("t"));
        Assert.Equal(new StatxTime(1000, 123456789), st.Atime);
        Assert.Equal(new StatxTime(3000, 5), st.Mtime);

        long before = st.Ctime.TotalNs;
        Assert.Equal(0, Utimens(P("t"), 0, UtimeNow, 0, UtimeOmit));
        st = Statx(P("t"));
        Assert.True(st.Atime.Sec > 1_600_000_000);
        Assert.Equal(new StatxTime(3000, 5), st.Mtime);
        Assert.True(st.Ctime.TotalNs >= before);

        Assert.Equal(0, Chmod(P("t"), 0x180));
        Assert.Equal(0x180u, Statx(P("t")).Mode & 0xFFF);
        File.AppendAllText(P("t"), "more");
        st = Statx(P("t"));
        Assert.True(st.Mtime.Sec > 1_600_000_000, "a write moves mtime");
        Assert.Equal(created.Btime, st.Btime);

        Assert.Equal(0, Mkdir(P("d")));
        long dirMtime = Statx(P("d")).Mtime.TotalNs;
        Thread.Sleep(5);
        File.WriteAllText(P("d/child"), "");
        Assert.True(Statx(P("d")).Mtime.TotalNs > dirMtime, "a new entry moves the directory's mtime");
    }

    [Fact]
    public void Statfs_counts_what_the_store_holds()
    {
        static long Used(string path)
        {
            var d = new DriveInfo(path);
            return d.TotalSize - d.TotalFreeSpace;
        }
        long used0 = Used(M.MountPoint);
        File.WriteAllBytes(P("unique"), Random(4 << 20, 7));
        long used1 = Used(M.MountPoint);
        Assert.True(used1 - used0 >= 4 << 20, $"{used0} -> {used1}");
        int src = OpenOrThrow(P("unique"), ORdonly), dst = OpenOrThrow(P("clone"), OCreat | OWronly);
        try
        {
            Assert.Equal(4 << 20, CopyFileRange(src, 0, dst, 0, 4 << 20));
        }
        finally
        {
            Close(src);
            Close(dst);
        }
        long used2 = Used(M.MountPoint);
        Assert.True(used2 - used1 < 1 << 20, $"a reflinked copy costs no data: {used1} -> {used2}");
    }

    [Fact]
    public void Control_directory_is_hidden_but_found_and_reports_statistics()
    {
        File.WriteAllText(P("visible"), "v");
        Assert.DoesNotContain(".dedupfs", Directory.GetFileSystemEntries(M.MountPoint).Select(Path.GetFileName));
        Assert.True(Directory.Exists(P(".dedupfs")));
        string[] files = Directory.GetFiles(P(".dedupfs")).Select(f => Path.GetFileName(f)!).ToArray();
        foreach (string name in (string[])["pages_shared", "pages_sharing", "pages_unshared", "cow_ksm", "unique_pages", "inline_dedup_hits",
                     "logical_bytes", "stored_bytes", "dedup_ratio", "cache_bytes", "cache_capacity_bytes", "cache_hits", "cache_misses",
                     "stats.json", "pid", "inline_dedup", "clone", "shares"])
            Assert.Contains(name, files);

        Assert.Equal(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(P(".dedupfs/pid")).Trim());
        File.WriteAllBytes(P("twin1"), Random(64 << 10, 8));
        File.WriteAllBytes(P("twin2"), Random(64 << 10, 8)); // inline dedup shares every page
        Assert.True(Stat("pages_shared") >= 16);
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(P(".dedupfs/stats.json"))))
        {
            Assert.Equal(Stat("unique_pages"), json.RootElement.GetProperty("unique_pages").GetInt64());
            Assert.True(json.RootElement.GetProperty("dedup_ratio").GetDouble() > 1.0);
            Assert.True(json.RootElement.GetProperty("logical_bytes").GetInt64() > json.RootElement.GetProperty("stored_bytes").GetInt64());
        }

        Assert.Equal("1", File.ReadAllText(P(".dedupfs/inline_dedup")).Trim());
        File.WriteAllText(P(".dedupfs/inline_dedup"), "0\n");
        Assert.Equal("0", File.ReadAllText(P(".dedupfs/inline_dedup")).Trim());
        long shared = Stat("pages_shared");
        File.WriteAllBytes(P("twin3"), Random(64 << 10, 8));
        Assert.Equal(shared, Stat("pages_shared"));
        File.WriteAllText(P(".dedupfs/inline_dedup"), "1");
        Assert.Equal(-EACCES, Open(P(".dedupfs/pages_shared"), OWronly));
        Assert.Equal(EACCES, Mkdir(P(".dedupfs/new")) == EACCES ? EACCES : Mkdir(P(".dedupfs/new2")));
        Assert.Equal(EEXIST, Mkdir(P(".dedupfs")));
    }

    private int ControlWrite(string file, string request)
    {
        int fd = OpenOrThrow(P(".dedupfs/" + file), ORdwr);
        try
        {
            long n = Write(fd, Encoding.UTF8.GetBytes(request));
            return n < 0 ? (int)-n : 0;
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void Control_clone_snapshots_a_tree_with_its_metadata()
    {
        Assert.Equal(0, Mkdir(P("d")));
        Assert.Equal(0, Mkdir(P("d/sub")));
        byte[] data = Random(100_000, 9);
        File.WriteAllBytes(P("d/a"), data);
        Assert.Equal(0, Chmod(P("d/a"), 0x1A0));
        Assert.Equal(0, Chown(P("d/a"), 1234, 5678));
        Assert.Equal(0, SetXattr(P("d/a"), "user.tag", "t"u8.ToArray()));
        Assert.Equal(0, Utimens(P("d/a"), 100, 1, 200, 2));
        Assert.Equal(0, Link(P("d/a"), P("d/sub/a2")));
        Assert.Equal(0, Symlink("a", P("d/l")));
        File.WriteAllText(P("d/sub/b"), "bee");

        Assert.Equal(0, ControlWrite("clone", "d\nd2"));
        Assert.Equal(data, File.ReadAllBytes(P("d2/a")));
        var a = Statx(P("d2/a"));
        Assert.Equal((0x8000u | 0x1A0u, 1234u, 5678u), (a.Mode, a.Uid, a.Gid));
        Assert.Equal(new StatxTime(200, 2), a.Mtime);
        Assert.Equal(2u, a.Nlink);
        Assert.Equal(a.Ino, Statx(P("d2/sub/a2")).Ino);
        Assert.NotEqual(Statx(P("d/a")).Ino, a.Ino);
        Assert.Equal("t", Encoding.ASCII.GetString(GetXattr(P("d2/a"), "user.tag", out _)!));
        Assert.Equal("a", new FileInfo(P("d2/l")).LinkTarget);
        Assert.Equal("bee", File.ReadAllText(P("d2/sub/b")));
        Assert.Equal(3u, Statx(P("d2")).Nlink);

        using (var f = new FileStream(P("d2/a"), FileMode.Open, FileAccess.Write))
        {
            f.Write("X"u8);
        }
        Assert.Equal(data, File.ReadAllBytes(P("d/a")));

        Assert.Equal(0, ControlWrite("clone", "d/sub/b\nsingle"));
        Assert.Equal("bee", File.ReadAllText(P("single")));
        Assert.Equal(EEXIST, ControlWrite("clone", "d\nd2"));
        Assert.Equal(ENOENT, ControlWrite("clone", "missing\nx"));
        Assert.Equal(ENOTDIR, ControlWrite("clone", "d/a\nsingle/x"));
        Assert.Equal(ENOENT, ControlWrite("clone", "d/a\nnowhere/x"));
        Assert.Equal(EINVAL, ControlWrite("clone", "d\nd/inside"));
        Assert.Equal(EINVAL, ControlWrite("clone", "only-one-line"));
    }

    [Fact]
    public void Control_shares_lists_the_files_sharing_pages()
    {
        File.WriteAllBytes(P("base"), Random(40960, 10));
        Assert.Equal(0, ControlWrite("clone", "base\ncopy"));
        Assert.Equal(0, Mkdir(P("dir")));
        Assert.Equal(0, ControlWrite("clone", "base\ndir/copy2"));
        using (var f = new FileStream(P("copy"), FileMode.Open, FileAccess.Write))
        {
            f.Write(new byte[4096]); // first page of the copy is now its own (a hole)
        }

        int fd = OpenOrThrow(P(".dedupfs/shares"), ORdwr);
        string text;
        try
        {
            Assert.Equal(4, Write(fd, "base"u8));
            text = Encoding.UTF8.GetString(ReadAll(fd, 0, 65536));
        }
        finally
        {
            Close(fd);
        }
        using var json = System.Text.Json.JsonDocument.Parse(text);
        var root = json.RootElement;
        Assert.Equal(10, root.GetProperty("pages").GetInt64());
        Assert.Equal(10, root.GetProperty("shared_pages").GetInt64());
        var sharing = root.GetProperty("sharing").EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!, e => e.GetProperty("pages").GetInt64());
        Assert.Equal(10, sharing["dir/copy2"]);
        Assert.Equal(9, sharing["copy"]);
        Assert.Equal(ENOENT, ControlWrite("shares", "nothing"));
    }

    [Fact]
    public void Mmap_reads_and_writes_reach_the_file()
    {
        File.WriteAllBytes(P("m"), new byte[16384]);
        using (var mmf = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(P("m"), FileMode.Open, null, 0))
        using (var view = mmf.CreateViewAccessor())
        {
            view.Write(5000, (byte)42);
            view.Write(12000, 0x01020304);
            view.Flush();
        }
        byte[] back = File.ReadAllBytes(P("m"));
        Assert.Equal(42, back[5000]);
        Assert.Equal(0x01020304, BitConverter.ToInt32(back, 12000));
    }

    [Fact]
    public void Chown_drops_setuid_and_setgid()
    {
        File.WriteAllText(P("s"), "x");
        Assert.Equal(0, Chmod(P("s"), 0xDED)); // 06755
        Assert.Equal(0xDEDu, Statx(P("s")).Mode & 0xFFF);
        Assert.Equal(0, Chown(P("s"), 65534, 65534));
        Assert.Equal(0x1EDu, Statx(P("s")).Mode & 0xFFF);
    }

    [Fact]
    public void Permissions_are_checked_for_other_users()
    {
        File.WriteAllText(P("rootfile"), "r");
        Assert.Equal(0, Chmod(P("rootfile"), 0x1A4));
        Assert.Equal(0, Mkdir(P("pub"), 0x1FF));
        Assert.Equal(0, Chmod(P("pub"), 0x1FF));
        Assert.Equal(0, Mkdir(P("tmp")));
        Assert.Equal(0, Chmod(P("tmp"), 0x3FF)); // 01777
        File.WriteAllText(P("tmp/theirs"), "t");
        File.WriteAllText(P("suid"), "s");
        Assert.Equal(0, Chmod(P("suid"), 0x9FF)); // 04777

        Assert.NotEqual(0, DedupMount.RunAsNobody($"echo x > '{P("rootfile")}'").Exit);
        Assert.Equal("r", File.ReadAllText(P("rootfile")));
        var (exit, error) = DedupMount.RunAsNobody($"echo mine > '{P("pub/mine")}'");
        Assert.True(exit == 0, error);
        Assert.Equal(65534u, Statx(P("pub/mine")).Uid);
        Assert.NotEqual(0, DedupMount.RunAsNobody($"rm -f '{P("tmp/theirs")}'").Exit);
        Assert.True(File.Exists(P("tmp/theirs")));
        Assert.NotEqual(0, DedupMount.RunAsNobody($"printf 'a\\nb' > '{P(".dedupfs/clone")}'").Exit);
        (exit, error) = DedupMount.RunAsNobody($"echo more >> '{P("suid")}'");
        Assert.True(exit == 0, error);
        Assert.Equal(0x1FFu, Statx(P("suid")).Mode & 0xFFF); // the write by another user dropped set-user-ID
    }

    [Fact]
    public void Everything_survives_a_remount()
    {
        Assert.Equal(0, Mkdir(P("d")));
        byte[] data = Random(200_000, 11);
        File.WriteAllBytes(P("d/f"), data);
        Assert.Equal(0, Link(P("d/f"), P("hard")));
        Assert.Equal(0, Symlink("d/f", P("sym")));
        Assert.Equal(0, SetXattr(P("d/f"), "user.k", "v"u8.ToArray()));
        Assert.Equal(0, Utimens(P("d/f"), 10, 20, 30, 40));
        Assert.Equal(0, Chmod(P("d"), 0x1C0));
        Assert.Equal(0, ControlWrite("clone", "d/f\nreflink"));
        int fd = OpenOrThrow(P("appended"), OCreat | OWronly);
        Assert.Equal(5, Write(fd, "12345"u8));
        Close(fd); // no fsync: unmount must commit
        long sharing = Stat("pages_sharing");
        var before = Statx(P("d/f"));

        M.Remount();

        var after = Statx(P("d/f")); // before any read, which moves atime (relatime)
        Assert.Equal(data, File.ReadAllBytes(P("d/f")));
        Assert.Equal(data, File.ReadAllBytes(P("reflink")));
        Assert.Equal("12345", File.ReadAllText(P("appended")));
        Assert.Equal((before.Ino, before.Mode, before.Nlink, before.Mtime, before.Atime, before.Btime), (after.Ino, after.Mode, after.Nlink, after.Mtime, after.Atime, after.Btime));
        Assert.Equal(after.Ino, Statx(P("hard")).Ino);
        Assert.Equal("d/f", new FileInfo(P("sym")).LinkTarget);
        Assert.Equal("v", Encoding.ASCII.GetString(GetXattr(P("d/f"), "user.k", out _)!));
        Assert.Equal(0x1C0u, Statx(P("d")).Mode & 0xFFF);
        Assert.Equal(sharing, Stat("pages_sharing"));
        Assert.Equal(0, Mkdir(P("new"))); // inode numbers continue, no collision
        Assert.NotEqual(Statx(P("new")).Ino, after.Ino);
    }

    [Fact]
    public void Fsync_makes_data_durable()
    {
        int fd = OpenOrThrow(P("durable"), OCreat | OWronly);
        try
        {
            Assert.Equal(4, Write(fd, "safe"u8));
            long commits = M.Engine.Store.CommitCount;
            Assert.Equal(0, Fsync(fd));
            Assert.True(M.Engine.Store.CommitCount > commits);
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void Forgotten_unlinked_inodes_are_freed()
    {
        File.WriteAllBytes(P("victim"), Random(50_000, 12));
        ulong ino = Statx(P("victim")).Ino;
        long unique = Stat("unique_pages");
        Assert.Equal(0, Unlink(P("victim")));
        File.WriteAllText("/proc/sys/vm/drop_caches", "2"); // the kernel forgets the inode
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (M.Engine.Store.Inodes.TryGet(DedupFs.Store.StoreKeys.Inode(ino), out _) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
            File.WriteAllText("/proc/sys/vm/drop_caches", "2");
        }
        Assert.False(M.Engine.Store.Inodes.TryGet(DedupFs.Store.StoreKeys.Inode(ino), out _));
        Assert.True(Stat("unique_pages") <= unique - 12);
    }

    [Fact]
    public void A_damaged_page_reads_as_eio()
    {
        File.WriteAllBytes(P("fragile"), Random(16384, 13));
        M.Remount(() =>
        {
            // Flip one byte in every stored page: each page's CRC32C no longer matches.
            using var pages = new FileStream(Path.Combine(M.StoreDir, "pages.dat"), FileMode.Open, FileAccess.ReadWrite);
            for (long at = 100; at < pages.Length; at += 4096)
            {
                pages.Position = at;
                int b = pages.ReadByte();
                pages.Position = at;
                pages.WriteByte((byte)(b ^ 0xFF));
            }
        });
        int fd = OpenOrThrow(P("fragile"), ORdonly);
        try
        {
            Assert.Equal(-EIO, Pread(fd, new byte[4096], 0));
        }
        finally
        {
            Close(fd);
        }
    }

    [Fact]
    public void A_copy_over_cached_data_is_seen_at_once()
    {
        byte[] fresh = Random(16384, 14);
        File.WriteAllBytes(P("src"), fresh);
        File.WriteAllBytes(P("dst"), Random(16384, 15));
        Assert.Equal(Random(16384, 15), File.ReadAllBytes(P("dst"))); // now in the kernel's cache (kernel mode)
        int src = OpenOrThrow(P("src"), ORdonly), dst = OpenOrThrow(P("dst"), ORdwr);
        try
        {
            Assert.Equal(16384, CopyFileRange(src, 0, dst, 0, 16384));
            Assert.Equal(fresh, ReadAll(dst, 0, 16384));
        }
        finally
        {
            Close(src);
            Close(dst);
        }
        Assert.Equal(fresh, File.ReadAllBytes(P("dst")));
    }

    [Fact]
    public void Set_group_id_directories_pass_their_group_on()
    {
        Assert.Equal(0, Mkdir(P("g")));
        Assert.Equal(0, Chown(P("g"), 0, 4321));
        Assert.Equal(0, Chmod(P("g"), 0x5FF)); // 02777
        File.WriteAllText(P("g/f"), "");
        Assert.Equal(0, Mkdir(P("g/sub")));
        Assert.Equal(4321u, Statx(P("g/f")).Gid);
        var sub = Statx(P("g/sub"));
        Assert.Equal(4321u, sub.Gid);
        Assert.Equal(0x400u, sub.Mode & 0x400);
        Assert.Equal(0, Symlink("f", P("g/link")));
        Assert.Equal(EPERM, LSetXattr(P("g/link"), "user.x", "1"u8.ToArray()));
    }

    [Fact]
    public void The_cache_mode_decides_who_caches_file_data()
    {
        File.WriteAllBytes(P("c"), Random(64 << 10, 16));
        Assert.Equal(Random(64 << 10, 16), File.ReadAllBytes(P("c")));
        _ = Statx(P("c"));
        Assert.Equal(Random(64 << 10, 16), File.ReadAllBytes(P("c")));
        long daemonReads = M.Engine.Cache.Hits + M.Engine.Cache.Misses;
        Assert.Equal(Random(64 << 10, 16), File.ReadAllBytes(P("c")));
        long delta = M.Engine.Cache.Hits + M.Engine.Cache.Misses - daemonReads;
        if (M.Mode == CacheMode.Shared) Assert.True(delta >= 16, $"direct I/O: every read reaches the daemon ({delta})");
        else Assert.Equal(0, delta); // the kernel's page cache answered
    }

    [Fact]
    public void Truncate_shrinks_and_grows_with_zeros()
    {
        byte[] data = Random(20000, 17);
        File.WriteAllBytes(P("t"), data);
        using (var f = new FileStream(P("t"), FileMode.Open, FileAccess.ReadWrite))
        {
            f.SetLength(5000);
            Assert.Equal(5000, Statx(P("t")).Size);
            f.SetLength(9000);
        }
        byte[] back = File.ReadAllBytes(P("t"));
        Assert.Equal(9000, back.Length);
        Assert.Equal(data.AsSpan(0, 5000).ToArray(), back.AsSpan(0, 5000).ToArray());
        Assert.All(back.AsSpan(5000).ToArray(), b => Assert.Equal(0, b));
        using (var d = new FileStream(P("t"), FileMode.Open, FileAccess.Write))
        {
            d.SetLength(6L << 30); // past 4 GiB
        }
        Assert.Equal(6L << 30, Statx(P("t")).Size);
    }

    [Fact]
    public void Copy_file_range_with_equal_unaligned_offsets_clones_the_middle()
    {
        byte[] data = Random(5 * 4096, 18);
        File.WriteAllBytes(P("s"), data);
        File.WriteAllBytes(P("d"), new byte[5 * 4096 + 50]);
        long sharing = Stat("pages_sharing");
        int src = OpenOrThrow(P("s"), ORdonly), dst = OpenOrThrow(P("d"), ORdwr);
        try
        {
            Assert.Equal(3 * 4096, CopyFileRange(src, 100, dst, 100, 3 * 4096));
        }
        finally
        {
            Close(src);
            Close(dst);
        }
        byte[] back = File.ReadAllBytes(P("d"));
        Assert.Equal(data.AsSpan(100, 3 * 4096).ToArray(), back.AsSpan(100, 3 * 4096).ToArray());
        Assert.All(back.AsSpan(0, 100).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(100 + 3 * 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.True(Stat("pages_sharing") - sharing >= 2, "pages 1 and 2 are shared, the edges copied");
    }
}
