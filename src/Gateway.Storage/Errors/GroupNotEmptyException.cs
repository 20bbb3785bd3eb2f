namespace Gateway.Storage;

/// <summary>A group with members cannot be deleted.</summary>
public sealed class GroupNotEmptyException(string group, int members)
    : Exception($"Group '{group}' has {members} member(s); it can be deleted once they have left or expired.");
