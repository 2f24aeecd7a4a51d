namespace DedupFs.Fuse.Api;

/// <summary>The kernel's name for an inode: fuse_in_header.nodeid. 1 is the root.</summary>
public readonly record struct NodeId(ulong Value)
{
    public static readonly NodeId Root = new(1);
    public override string ToString() => Value.ToString();
}

/// <summary>The filesystem's own handle for an open file or directory, returned by OPEN/OPENDIR/CREATE.</summary>
public readonly record struct FileHandle(ulong Value)
{
    public override string ToString() => Value.ToString();
}

/// <summary>The kernel's request id: fuse_in_header.unique.</summary>
public readonly record struct RequestId(ulong Value)
{
    public override string ToString() => Value.ToString();
}
