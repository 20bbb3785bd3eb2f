using Gateway.Log;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Storage;

/// <summary>Refuses to start with storage settings the log cannot use, saying which and why.</summary>
internal sealed class StorageOptionsValidation(IConfiguration configuration) : IValidateOptions<LogStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, LogStoreOptions options)
    {
        // The configuration binder takes an enum's number too ("1" would be memory): only the names are accepted.
        if (configuration["Storage:TopicDefaults:Acks"] is { } acks && !acks.Equals("disk", StringComparison.OrdinalIgnoreCase) && !acks.Equals("memory", StringComparison.OrdinalIgnoreCase))
        {
            return ValidateOptionsResult.Fail($"Storage: TopicDefaults:Acks is 'disk' or 'memory', not '{acks}'.");
        }
        return options.ValidationError() is { } error ? ValidateOptionsResult.Fail($"Storage: {error}") : ValidateOptionsResult.Success;
    }
}
