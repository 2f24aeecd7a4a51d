namespace DedupFs.Fuse.Api;

/// <summary>One element of BATCH_FORGET: drop <see cref="Count"/> lookups of <see cref="Node"/>.</summary>
public readonly record struct ForgetItem(NodeId Node, ulong Count);
