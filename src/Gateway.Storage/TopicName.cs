namespace Gateway.Storage;

/// <summary>Kafka's topic name rule: 1-249 characters of [a-zA-Z0-9._-], and neither "." nor "..".</summary>
public static class TopicName
{
    public const int MaxLength = 249;

    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength || name is "." or "..")
        {
            return false;
        }
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }
        return true;
    }
}
