using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Protocol.Packets;
using FsCheck;
using FsCheck.Fluent;

namespace Broker.Tests.Protocol;

/// <summary>A generated packet with the protocol level it is valid for.</summary>
public sealed record PacketCase(MqttPacket Packet, MqttProtocolVersion Version)
{
    public override string ToString() => $"{Version} {Packet}";
}

/// <summary>A valid encoded frame plus a seed that drives one random mutation of it.</summary>
public sealed record MutationCase(PacketCase Case, int Seed)
{
    public override string ToString() => $"seed {Seed}: {Case}";
}

/// <summary>
/// FsCheck generators of valid MQTT packets of every type for 3.1.1 and 5.0 (3.1 CONNECTs too). Values stay inside
/// what the spec allows (non-zero ids, legal reason codes, strings without U+0000 or lone surrogates), so encode then
/// decode must be the identity.
/// </summary>
public static class MqttPacketGenerators
{
    private static readonly string[] TextPieces = ["a", "b", "z", "/", "0", " ", "ü", "€", "中", "😀", "-", "$", "_", "\uFEFF"]; // U+FEFF must survive [MQTT-1.5.4-3]
    private static readonly string[] FilterPieces = ["a", "/", "+", "#", "ü", "b", "$share/"];

    public static Gen<PacketCase> AnyCase =>
        Gen.OneOf(
            PacketFor(MqttProtocolVersion.V311).Select(p => new PacketCase(p, MqttProtocolVersion.V311)),
            PacketFor(MqttProtocolVersion.V500).Select(p => new PacketCase(p, MqttProtocolVersion.V500)));

    public static Gen<MqttPacket> PacketFor(MqttProtocolVersion version)
    {
        var v5 = version == MqttProtocolVersion.V500;
        var gens = new List<Gen<MqttPacket>>
        {
            Connect(v5).Select(p => (MqttPacket)p),
            ConnAck(v5).Select(p => (MqttPacket)p),
            Publish(v5).Select(p => (MqttPacket)p),
            Publish(v5).Select(p => (MqttPacket)p),
            Ack(v5, MqttPacketType.PubAck),
            Ack(v5, MqttPacketType.PubRec),
            Ack(v5, MqttPacketType.PubRel),
            Ack(v5, MqttPacketType.PubComp),
            Subscribe(v5).Select(p => (MqttPacket)p),
            SubAck(v5).Select(p => (MqttPacket)p),
            Unsubscribe(v5).Select(p => (MqttPacket)p),
            UnsubAck(v5).Select(p => (MqttPacket)p),
            Gen.Constant((MqttPacket)MqttPingReqPacket.Instance),
            Gen.Constant((MqttPacket)MqttPingRespPacket.Instance),
            Disconnect(v5).Select(p => (MqttPacket)p),
        };
        if (v5)
        {
            gens.Add(Auth().Select(p => (MqttPacket)p));
        }

        return Gen.OneOf(gens);
    }

    private static Gen<string> Text(int min, int max, string[] pieces) =>
        Gen.Choose(min, max).SelectMany(n => Gen.ArrayOf(Gen.Elements(pieces), n)).Select(string.Concat);

    private static Gen<string> Text(int min = 0, int max = 12) => Text(min, max, TextPieces);

    private static Gen<string> TopicName => Text(1, 10);

    private static Gen<string?> OptText => Gen.OneOf(Gen.Constant<string?>(null), Text().Select(s => (string?)s));

    private static Gen<byte[]> Bytes(int max) =>
        Gen.Choose(0, max).SelectMany(n => Gen.ArrayOf(Gen.Choose(0, 255).Select(i => (byte)i), n));

    private static Gen<T?> Opt<T>(Gen<T> gen)
        where T : struct => Gen.OneOf(Gen.Constant<T?>(null), gen.Select(x => (T?)x));

    private static Gen<ReadOnlyMemory<byte>?> OptBytes(int max) =>
        Gen.OneOf(Gen.Constant<ReadOnlyMemory<byte>?>(null), Bytes(max).Select(b => (ReadOnlyMemory<byte>?)b));

    private static Gen<ushort> PacketId => Gen.Choose(1, 65535).Select(i => (ushort)i);

    private static Gen<ushort> UShort => Gen.Choose(0, 65535).Select(i => (ushort)i);

    private static Gen<uint> UInt => Gen.Choose(int.MinValue, int.MaxValue).Select(i => unchecked((uint)i));

    private static Gen<bool> Bool => Gen.Elements(true, false);

    private static Gen<ImmutableArray<MqttUserProperty>> UserProperties(bool v5) =>
        !v5
            ? Gen.Constant(ImmutableArray<MqttUserProperty>.Empty)
            : Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(
                    Text().SelectMany(name => Text().Select(value => new MqttUserProperty(name, value))), n))
                .Select(a => ImmutableArray.Create(a));

    private static Gen<MqttMessageProperties> MessageProperties(bool v5) =>
        !v5
            ? Gen.Constant(MqttMessageProperties.Empty)
            : from format in Opt(Gen.Choose(0, 1).Select(i => (byte)i))
              from expiry in Opt(UInt)
              from contentType in OptText
              from responseTopic in OptText
              from correlation in OptBytes(8)
              from user in UserProperties(v5)
              select new MqttMessageProperties
              {
                  PayloadFormatIndicator = format,
                  MessageExpiryInterval = expiry,
                  ContentType = contentType,
                  ResponseTopic = responseTopic,
                  CorrelationData = correlation,
                  UserProperties = user,
              };

    private static Gen<MqttWill?> Will(bool v5) =>
        Gen.OneOf(
            Gen.Constant<MqttWill?>(null),
            from topic in TopicName
            from payload in Bytes(16)
            from qos in Gen.Choose(0, 2)
            from retain in Bool
            from delay in v5 ? UInt : Gen.Constant(0u)
            from properties in MessageProperties(v5)
            select (MqttWill?)new MqttWill
            {
                Topic = topic, Payload = payload, QoS = (MqttQoS)qos, Retain = retain, DelayInterval = delay, Properties = properties,
            });

    private static Gen<MqttConnectPacket> Connect(bool v5) =>
        from level in v5 ? Gen.Constant(MqttProtocolVersion.V500) : Gen.Elements(MqttProtocolVersion.V311, MqttProtocolVersion.V310)
        from clientId in Text(0, 23)
        from clean in Bool
        from keepAlive in UShort
        from username in OptText
        from password in OptBytes(8)
        from will in Will(v5)
        from sessionExpiry in v5 ? UInt : Gen.Constant(0u)
        from receiveMaximum in v5 ? Opt(Gen.Choose(1, 65535).Select(i => (ushort)i)) : Gen.Constant<ushort?>(null)
        from maximumPacketSize in v5 ? Opt(UInt.Where(u => u != 0)) : Gen.Constant<uint?>(null)
        from topicAliasMaximum in v5 ? UShort : Gen.Constant((ushort)0)
        from requestResponse in v5 ? Bool : Gen.Constant(false)
        from requestProblem in v5 ? Bool : Gen.Constant(true)
        from authMethod in v5 ? OptText : Gen.Constant<string?>(null)
        from authData in v5 ? OptBytes(8) : Gen.Constant<ReadOnlyMemory<byte>?>(null)
        from user in UserProperties(v5)
        select new MqttConnectPacket
        {
            ProtocolName = level == MqttProtocolVersion.V310 ? "MQIsdp" : "MQTT",
            ProtocolVersion = level,
            ClientId = clientId,
            CleanStart = clean,
            KeepAlive = keepAlive,
            Username = !v5 && password is not null ? username ?? "u" : username, // [MQTT-3.1.2-22]
            Password = password,
            Will = will,
            SessionExpiryInterval = sessionExpiry,
            ReceiveMaximum = receiveMaximum,
            MaximumPacketSize = maximumPacketSize,
            TopicAliasMaximum = topicAliasMaximum,
            RequestResponseInformation = requestResponse,
            RequestProblemInformation = requestProblem,
            AuthenticationMethod = authMethod,
            AuthenticationData = authData,
            UserProperties = user,
        };

    private static Gen<MqttConnAckPacket> ConnAck(bool v5) =>
        !v5
            ? from present in Bool
              from code in Gen.Choose(0, 5)
              select new MqttConnAckPacket { SessionPresent = present, ReasonCode = (byte)code }
            : from present in Bool
              from code in Gen.Elements<byte>(0x00, 0x80, 0x84, 0x85, 0x86, 0x87, 0x95, 0x9C)
              from sessionExpiry in Opt(UInt)
              from receiveMaximum in Opt(Gen.Choose(1, 65535).Select(i => (ushort)i))
              from maximumQoS in Opt(Gen.Choose(0, 1).Select(i => (byte)i))
              from flags in Gen.ArrayOf(Opt(Bool), 4)
              from maximumPacketSize in Opt(UInt.Where(u => u != 0))
              from strings in Gen.ArrayOf(OptText, 5)
              from topicAliasMaximum in Opt(UShort)
              from serverKeepAlive in Opt(UShort)
              from authData in OptBytes(8)
              from user in UserProperties(v5)
              select new MqttConnAckPacket
              {
                  SessionPresent = present,
                  ReasonCode = code,
                  SessionExpiryInterval = sessionExpiry,
                  ReceiveMaximum = receiveMaximum,
                  MaximumQoS = maximumQoS,
                  RetainAvailable = flags[0],
                  WildcardSubscriptionAvailable = flags[1],
                  SubscriptionIdentifiersAvailable = flags[2],
                  SharedSubscriptionAvailable = flags[3],
                  MaximumPacketSize = maximumPacketSize,
                  AssignedClientIdentifier = strings[0],
                  ReasonString = strings[1],
                  ResponseInformation = strings[2],
                  ServerReference = strings[3],
                  AuthenticationMethod = strings[4],
                  TopicAliasMaximum = topicAliasMaximum,
                  ServerKeepAlive = serverKeepAlive,
                  AuthenticationData = authData,
                  UserProperties = user,
              };

    private static Gen<MqttPublishPacket> Publish(bool v5) =>
        from qos in Gen.Choose(0, 2)
        from dup in qos == 0 ? Gen.Constant(false) : Bool
        from retain in Bool
        from packetId in qos == 0 ? Gen.Constant((ushort)0) : PacketId
        from alias in v5 ? Gen.OneOf(Gen.Constant((ushort)0), Gen.Choose(1, 65535).Select(i => (ushort)i)) : Gen.Constant((ushort)0)
        from topic in alias != 0 ? Gen.OneOf(Gen.Constant(""), TopicName) : TopicName
        from payload in Bytes(64)
        from subscriptionIds in v5
            ? Gen.Choose(0, 2).SelectMany(n => Gen.ArrayOf(Gen.Choose(1, 268_435_455).Select(i => (uint)i), n))
            : Gen.Constant(Array.Empty<uint>())
        from properties in MessageProperties(v5)
        select new MqttPublishPacket
        {
            Topic = topic, Payload = payload, QoS = (MqttQoS)qos, Dup = dup, Retain = retain, PacketId = packetId,
            TopicAlias = alias, SubscriptionIdentifiers = ImmutableArray.Create(subscriptionIds), Properties = properties,
        };

    private static Gen<MqttPacket> Ack(bool v5, MqttPacketType type)
    {
        var codes = type is MqttPacketType.PubAck or MqttPacketType.PubRec
            ? new byte[] { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 }
            : new byte[] { 0x00, 0x92 };
        return from id in PacketId
               from code in v5 ? Gen.Elements(codes) : Gen.Constant((byte)0)
               from reason in v5 ? OptText : Gen.Constant<string?>(null)
               from user in UserProperties(v5)
               select (MqttPacket)(type switch
               {
                   MqttPacketType.PubAck => new MqttPubAckPacket { PacketId = id, ReasonCode = (MqttReasonCode)code, ReasonString = reason, UserProperties = user },
                   MqttPacketType.PubRec => new MqttPubRecPacket { PacketId = id, ReasonCode = (MqttReasonCode)code, ReasonString = reason, UserProperties = user },
                   MqttPacketType.PubRel => new MqttPubRelPacket { PacketId = id, ReasonCode = (MqttReasonCode)code, ReasonString = reason, UserProperties = user },
                   _ => (MqttPublishAckPacket)new MqttPubCompPacket { PacketId = id, ReasonCode = (MqttReasonCode)code, ReasonString = reason, UserProperties = user },
               });
    }

    private static Gen<MqttTopicSubscription> Subscription(bool v5) =>
        from filter in Text(1, 8, FilterPieces)
        from qos in Gen.Choose(0, 2)
        from noLocal in v5 ? Bool : Gen.Constant(false)
        from rap in v5 ? Bool : Gen.Constant(false)
        from retainHandling in v5 ? Gen.Choose(0, 2) : Gen.Constant(0)
        select new MqttTopicSubscription
        {
            TopicFilter = filter, QoS = (MqttQoS)qos, NoLocal = noLocal, RetainAsPublished = rap,
            RetainHandling = (MqttRetainHandling)retainHandling,
        };

    private static Gen<MqttSubscribePacket> Subscribe(bool v5) =>
        from id in PacketId
        from subscriptions in Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(Subscription(v5), n))
        from subscriptionId in v5 ? Gen.OneOf(Gen.Constant(0u), Gen.Choose(1, 268_435_455).Select(i => (uint)i)) : Gen.Constant(0u)
        from user in UserProperties(v5)
        select new MqttSubscribePacket
        {
            PacketId = id, Subscriptions = ImmutableArray.Create(subscriptions), SubscriptionIdentifier = subscriptionId, UserProperties = user,
        };

    private static Gen<MqttSubAckPacket> SubAck(bool v5) =>
        from id in PacketId
        from codes in Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(
            v5 ? Gen.Elements<byte>(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
               : Gen.Elements<byte>(0x00, 0x01, 0x02, 0x80), n))
        from reason in v5 ? OptText : Gen.Constant<string?>(null)
        from user in UserProperties(v5)
        select new MqttSubAckPacket
        {
            PacketId = id, ReasonCodes = ImmutableArray.Create(Array.ConvertAll(codes, c => (MqttReasonCode)c)), ReasonString = reason, UserProperties = user,
        };

    private static Gen<MqttUnsubscribePacket> Unsubscribe(bool v5) =>
        from id in PacketId
        from filters in Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(Text(1, 8, FilterPieces), n))
        from user in UserProperties(v5)
        select new MqttUnsubscribePacket { PacketId = id, TopicFilters = ImmutableArray.Create(filters), UserProperties = user };

    private static Gen<MqttUnsubAckPacket> UnsubAck(bool v5) =>
        !v5
            ? PacketId.Select(id => new MqttUnsubAckPacket { PacketId = id })
            : from id in PacketId
              from codes in Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(Gen.Elements<byte>(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91), n))
              from reason in OptText
              from user in UserProperties(v5)
              select new MqttUnsubAckPacket
              {
                  PacketId = id, ReasonCodes = ImmutableArray.Create(Array.ConvertAll(codes, c => (MqttReasonCode)c)), ReasonString = reason, UserProperties = user,
              };

    private static Gen<MqttDisconnectPacket> Disconnect(bool v5) =>
        !v5
            ? Gen.Constant(MqttDisconnectPacket.Normal)
            : from code in Gen.Elements<byte>(0x00, 0x04, 0x80, 0x81, 0x82, 0x8B, 0x8E, 0x95, 0x9C, 0xA2)
              from sessionExpiry in Opt(UInt)
              from reason in OptText
              from reference in OptText
              from user in UserProperties(v5)
              select new MqttDisconnectPacket
              {
                  ReasonCode = (MqttReasonCode)code, SessionExpiryInterval = sessionExpiry, ReasonString = reason,
                  ServerReference = reference, UserProperties = user,
              };

    private static Gen<MqttAuthPacket> Auth() =>
        from code in Gen.Elements<byte>(0x00, 0x18, 0x19)
        from method in OptText
        from data in OptBytes(8)
        from reason in OptText
        from user in UserProperties(true)
        select new MqttAuthPacket
        {
            ReasonCode = (MqttReasonCode)code, AuthenticationMethod = method, AuthenticationData = data, ReasonString = reason, UserProperties = user,
        };
}

/// <summary>The arbitraries FsCheck.Xunit properties register (no shrinkers: the cases print whole).</summary>
public static class MqttArbitraries
{
    public static Arbitrary<PacketCase> PacketCases() => Arb.From(MqttPacketGenerators.AnyCase);

    public static Arbitrary<MutationCase> MutationCases() =>
        Arb.From(MqttPacketGenerators.AnyCase.SelectMany(
            c => Gen.Choose(0, int.MaxValue - 1).Select(seed => new MutationCase(c, seed))));
}
