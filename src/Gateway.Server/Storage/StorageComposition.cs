using Gateway.Log;
using Gateway.Storage;
using Gateway.Storage.Kafka;
using Microsoft.Extensions.Options;

namespace Gateway.Server.Storage;

/// <summary>
/// The one place that picks the storage backend, from <c>Storage:Backend</c>: <c>embedded</c> (the default; the log
/// on FasterLog and the groups in LiteDB under <c>Storage:DataDirectory</c>) or <c>kafka</c> (a Kafka cluster,
/// <c>Kafka:*</c>). Everything else in the server sees the storage port only (<see cref="ILogStorage"/>,
/// <see cref="IGroupCoordinator"/>).
/// </summary>
internal static class StorageComposition
{
    public const string Embedded = "embedded";

    public const string Kafka = "kafka";

    public static readonly string[] Backends = [Embedded, Kafka];

    /// <summary>Whether the configured backend is the Kafka one.</summary>
    public static bool IsKafka(IConfiguration configuration) => string.Equals(configuration["Storage:Backend"], Kafka, StringComparison.OrdinalIgnoreCase);

    /// <summary>Why the configured backend cannot be used (exit 2), or null.</summary>
    public static string? UnknownBackend(IConfiguration configuration) =>
        configuration["Storage:Backend"] is { Length: > 0 } backend && !Backends.Contains(backend, StringComparer.OrdinalIgnoreCase)
            ? $"Refusing to start: Storage:Backend is '{backend}'; the backends are: {string.Join(", ", Backends)}."
            : null;

    public static void AddStorage(this WebApplicationBuilder builder)
    {
        if (IsKafka(builder.Configuration))
        {
            builder.Services.AddOptions<KafkaBackendOptions>().BindConfiguration("Kafka");
            builder.Services.AddSingleton<KafkaStorage>();
            builder.Services.AddSingleton<IStorageHost>(sp => sp.GetRequiredService<KafkaStorage>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<KafkaStorage>());
            builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageHost>().Store);
            builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageHost>().Groups);
            builder.Services.AddHealthChecks().AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);
            return;
        }
        builder.Services.AddOptions<LogStoreOptions>().BindConfiguration("Storage").ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LogStoreOptions>, StorageOptionsValidation>();
        builder.Services.AddOptions<GroupOptions>().BindConfiguration("Groups").ValidateOnStart();
        builder.Services.AddSingleton<EmbeddedStorage>();
        builder.Services.AddSingleton<IStorageHost>(sp => sp.GetRequiredService<EmbeddedStorage>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EmbeddedStorage>());
        builder.Services.AddHostedService<RetentionService>();
        // Resolved on first use, after the hosted service opened it. (Not transient: the request scope would dispose it.)
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageHost>().Store);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageHost>().Groups);
        builder.Services.AddHealthChecks().AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);
    }
}
