namespace Gateway.Storage;

/// <summary>No group by that name has members or committed offsets.</summary>
public sealed class GroupNotFoundException(string group) : Exception($"Group '{group}' does not exist.");
