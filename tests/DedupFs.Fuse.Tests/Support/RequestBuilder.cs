using System.Runtime.InteropServices;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Tests.Support;

/// <summary>Builds request bytes the way the kernel lays them out: header, fixed arguments, names, data.</summary>
internal sealed class RequestBuilder(FuseOpcode opcode, ulong nodeId = 1, ulong unique = 7)
{
    private readonly List<byte> _args = [];

    public RequestBuilder Struct<T>(T value) where T : unmanaged
    {
        _args.AddRange(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref value, 1)).ToArray());
        return this;
    }

    public RequestBuilder Name(string name)
    {
        _args.AddRange(System.Text.Encoding.UTF8.GetBytes(name));
        _args.Add(0);
        return this;
    }

    public RequestBuilder Bytes(ReadOnlySpan<byte> bytes)
    {
        _args.AddRange(bytes.ToArray());
        return this;
    }

    public byte[] Build(uint uid = 1000, uint gid = 1000, uint pid = 42)
    {
        var header = new FuseInHeader
        {
            Len = (uint)(40 + _args.Count),
            Opcode = (uint)opcode,
            Unique = unique,
            NodeId = nodeId,
            Uid = uid,
            Gid = gid,
            Pid = pid,
        };
        var bytes = new byte[header.Len];
        MemoryMarshal.Write(bytes, in header);
        _args.CopyTo(bytes, 40);
        return bytes;
    }
}

/// <summary>Decodes a reply produced by the dispatcher.</summary>
internal readonly record struct Reply(byte[] Bytes, int Length)
{
    public FuseOutHeader Header => MemoryMarshal.Read<FuseOutHeader>(Bytes);

    public int Error => -Header.Error;

    public ReadOnlySpan<byte> Body => Bytes.AsSpan(16, Length - 16);

    public T As<T>() where T : unmanaged => MemoryMarshal.Read<T>(Body);
}
