namespace Gateway.Storage;

/// <summary>The member never joined, left, or its lease expired: it must join again.</summary>
public sealed class UnknownMemberException(string group, string memberId)
    : Exception($"Member '{memberId}' is not in group '{group}' (it left or its lease expired); join again.");
