using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Tests.Channel;

/// <summary>The connection's states and the checked moves between them; what each state does with a client packet.</summary>
public sealed class ConnectionLifecycleSpecs
{
    public static TheoryData<ConnectionState, ConnectionEvent, ConnectionState> LegalMoves => new()
    {
        { ConnectionState.AwaitingConnect, ConnectionEvent.ConnectAdmitted, ConnectionState.Authenticating },
        { ConnectionState.Authenticating, ConnectionEvent.Authenticated, ConnectionState.Attaching },
        { ConnectionState.Attaching, ConnectionEvent.SessionAttached, ConnectionState.Connected },
        { ConnectionState.Connected, ConnectionEvent.SessionMoved, ConnectionState.Reattaching },
        { ConnectionState.Connected, ConnectionEvent.SessionStarting, ConnectionState.Reattaching },
        { ConnectionState.Reattaching, ConnectionEvent.SessionAttached, ConnectionState.Connected },
        { ConnectionState.AwaitingConnect, ConnectionEvent.Closed, ConnectionState.Closing },
        { ConnectionState.Authenticating, ConnectionEvent.Closed, ConnectionState.Closing },
        { ConnectionState.Attaching, ConnectionEvent.Closed, ConnectionState.Closing },
        { ConnectionState.Connected, ConnectionEvent.Closed, ConnectionState.Closing },
        { ConnectionState.Reattaching, ConnectionEvent.Closed, ConnectionState.Closing },
        { ConnectionState.Closing, ConnectionEvent.Closed, ConnectionState.Closing },
    };

    [Theory]
    [MemberData(nameof(LegalMoves))]
    public void Every_legal_move_should_reach_its_state(ConnectionState from, ConnectionEvent @event, ConnectionState to)
    {
        Assert.Equal(new LifecycleStep(to, Legal: true), ConnectionLifecycle.Transition(from, @event));
    }

    [Fact]
    public void Every_other_move_should_be_refused_and_leave_the_state_as_it_was()
    {
        var legal = LegalMoves.Select(row => ((ConnectionState)row[0], (ConnectionEvent)row[1])).ToHashSet();
        var refused = 0;
        foreach (var from in Enum.GetValues<ConnectionState>())
        {
            foreach (var @event in Enum.GetValues<ConnectionEvent>())
            {
                if (legal.Contains((from, @event)))
                {
                    continue;
                }

                Assert.Equal(new LifecycleStep(from, Legal: false), ConnectionLifecycle.Transition(from, @event));
                refused++;
            }
        }

        Assert.Equal((6 * 6) - legal.Count, refused);
    }

    [Theory]
    [InlineData(ConnectionState.Connected, ConnectionEvent.ConnectAdmitted)] // a second CONNECT never opens anything [MQTT-3.1.0-2]
    [InlineData(ConnectionState.AwaitingConnect, ConnectionEvent.SessionAttached)] // no CONNACK without CONNECT and authentication
    [InlineData(ConnectionState.AwaitingConnect, ConnectionEvent.Authenticated)]
    [InlineData(ConnectionState.Authenticating, ConnectionEvent.SessionAttached)] // the session is asked only once authenticated
    [InlineData(ConnectionState.Attaching, ConnectionEvent.SessionMoved)] // only an attached session can move
    [InlineData(ConnectionState.Attaching, ConnectionEvent.SessionStarting)] // only a connected client's dormant session starts
    [InlineData(ConnectionState.Reattaching, ConnectionEvent.SessionStarting)] // it starts once
    [InlineData(ConnectionState.Closing, ConnectionEvent.SessionAttached)] // nothing reopens a closing connection
    [InlineData(ConnectionState.Closing, ConnectionEvent.ConnectAdmitted)]
    public void Moves_that_skip_a_step_or_reopen_should_be_refused(ConnectionState from, ConnectionEvent @event)
    {
        var step = ConnectionLifecycle.Transition(from, @event);
        Assert.False(step.Legal);
        Assert.Equal(from, step.To);
    }

    [Fact]
    public void A_whole_life_should_run_from_connect_to_close_through_a_session_move()
    {
        var state = ConnectionState.AwaitingConnect;
        foreach (var @event in new[]
                 {
                     ConnectionEvent.ConnectAdmitted, ConnectionEvent.Authenticated, ConnectionEvent.SessionAttached,
                     ConnectionEvent.SessionMoved, ConnectionEvent.SessionAttached, ConnectionEvent.Closed,
                 })
        {
            var step = ConnectionLifecycle.Transition(state, @event);
            Assert.True(step.Legal, $"{@event} from {state}");
            state = step.To;
        }

        Assert.Equal(ConnectionState.Closing, state);
    }

    [Theory]
    [InlineData(MqttPacketType.Publish)]
    [InlineData(MqttPacketType.Subscribe)]
    [InlineData(MqttPacketType.PingReq)]
    [InlineData(MqttPacketType.Disconnect)]
    [InlineData(MqttPacketType.Auth)]
    public void A_packet_other_than_connect_first_should_close_without_an_answer(MqttPacketType type)
    {
        // [MQTT-3.1.0-1] the first packet from the client must be CONNECT; no CONNACK goes to one that broke it.
        var answer = ConnectionLifecycle.OnPacket(ConnectionState.AwaitingConnect, type);
        Assert.Equal(PacketVerdict.CloseWithoutAnswer, answer.Verdict);
        Assert.Equal("sent " + type + " before CONNECT", string.Format(System.Globalization.CultureInfo.InvariantCulture, answer.Why!, type));
        Assert.Equal(PacketVerdict.Handle, ConnectionLifecycle.OnPacket(ConnectionState.AwaitingConnect, MqttPacketType.Connect).Verdict);
    }

    public static TheoryData<MqttPacket, bool> DormantSessionPackets => new()
    {
        { new MqttPublishPacket { Topic = "t", QoS = MqttQoS.AtMostOnce }, false },
        { new MqttPublishPacket { Topic = "t", QoS = MqttQoS.AtLeastOnce, PacketId = 1 }, false },
        { new MqttPublishPacket { Topic = "t", QoS = MqttQoS.ExactlyOnce, PacketId = 1 }, true }, // its packet id is kept until PUBREL
        { new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = "t" }] }, true },
        { new MqttUnsubscribePacket { PacketId = 1, TopicFilters = ["t"] }, true },
        { new MqttPubAckPacket { PacketId = 1 }, true },
        { new MqttPubRecPacket { PacketId = 1 }, true },
        { new MqttPubRelPacket { PacketId = 1 }, true },
        { new MqttPubCompPacket { PacketId = 1 }, true },
        { MqttPingReqPacket.Instance, false },
        { new MqttDisconnectPacket(), false },
    };

    [Theory]
    [MemberData(nameof(DormantSessionPackets))]
    public void A_dormant_clean_session_should_start_for_subscriptions_QoS_2_messages_and_acknowledgements_only(MqttPacket packet, bool starts)
    {
        Assert.Equal(starts, ConnectionLifecycle.NeedsStartedSession(packet));
    }

    [Fact]
    public void A_second_connect_while_connected_should_be_a_protocol_violation()
    {
        // [MQTT-3.1.0-2] "The Server MUST process a second CONNECT Packet sent from a Client as a protocol violation".
        Assert.Equal(new PacketAnswer(PacketVerdict.ProtocolViolation, MqttReasonCode.ProtocolError, "second CONNECT [MQTT-3.1.0-2]"),
            ConnectionLifecycle.OnPacket(ConnectionState.Connected, MqttPacketType.Connect));
    }

    [Theory]
    [InlineData(MqttPacketType.ConnAck)]
    [InlineData(MqttPacketType.SubAck)]
    [InlineData(MqttPacketType.UnsubAck)]
    [InlineData(MqttPacketType.PingResp)]
    public void Packets_only_a_server_sends_should_be_protocol_violations_from_a_client(MqttPacketType type)
    {
        var answer = ConnectionLifecycle.OnPacket(ConnectionState.Connected, type);
        Assert.Equal(PacketVerdict.ProtocolViolation, answer.Verdict);
        Assert.Equal(MqttReasonCode.ProtocolError, answer.Reason);
        Assert.Equal("a client may not send " + type, answer.Why);
    }

    [Fact]
    public void An_auth_packet_should_be_a_protocol_violation_as_no_authentication_method_is_offered()
    {
        var answer = ConnectionLifecycle.OnPacket(ConnectionState.Connected, MqttPacketType.Auth);
        Assert.Equal(PacketVerdict.ProtocolViolation, answer.Verdict);
        Assert.Equal(MqttReasonCode.ProtocolError, answer.Reason);
    }

    [Theory]
    [InlineData(MqttPacketType.Publish)]
    [InlineData(MqttPacketType.PubAck)]
    [InlineData(MqttPacketType.PubRec)]
    [InlineData(MqttPacketType.PubRel)]
    [InlineData(MqttPacketType.PubComp)]
    [InlineData(MqttPacketType.Subscribe)]
    [InlineData(MqttPacketType.Unsubscribe)]
    [InlineData(MqttPacketType.PingReq)]
    [InlineData(MqttPacketType.Disconnect)]
    public void A_connected_client_packet_should_be_handled(MqttPacketType type)
    {
        Assert.Equal(PacketVerdict.Handle, ConnectionLifecycle.OnPacket(ConnectionState.Connected, type).Verdict);
    }

    [Theory]
    [InlineData(ConnectionState.Authenticating, MqttPacketType.Publish)]
    [InlineData(ConnectionState.Attaching, MqttPacketType.Subscribe)]
    [InlineData(ConnectionState.Attaching, MqttPacketType.Connect)] // waits, and is refused as a second CONNECT once connected
    [InlineData(ConnectionState.Reattaching, MqttPacketType.Publish)]
    [InlineData(ConnectionState.Reattaching, MqttPacketType.Disconnect)]
    public void Packets_between_connect_and_an_attached_session_should_wait(ConnectionState state, MqttPacketType type)
    {
        Assert.Equal(PacketVerdict.Stash, ConnectionLifecycle.OnPacket(state, type).Verdict);
    }

    [Fact]
    public void A_ping_while_reattaching_should_be_answered_and_nothing_should_be_read_while_closing()
    {
        Assert.Equal(PacketVerdict.Handle, ConnectionLifecycle.OnPacket(ConnectionState.Reattaching, MqttPacketType.PingReq).Verdict);
        Assert.Equal(PacketVerdict.Ignore, ConnectionLifecycle.OnPacket(ConnectionState.Closing, MqttPacketType.Publish).Verdict);
    }

    [Fact]
    public void Only_a_persistent_session_should_be_asked_for_again_when_it_stops_under_the_connection()
    {
        Assert.True(ConnectionLifecycle.ReattachesWhenSessionEnds(grantedExpiry: 60));
        Assert.True(ConnectionLifecycle.ReattachesWhenSessionEnds(grantedExpiry: uint.MaxValue));
        Assert.False(ConnectionLifecycle.ReattachesWhenSessionEnds(grantedExpiry: 0));
    }
}
