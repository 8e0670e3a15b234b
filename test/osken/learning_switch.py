"""A learning switch for nvs in OpenFlow 1.3, shaped like Neutron's OVS agent:
several tables and a Nicira register carrying the network.

  table 0   every packet: reg6 := network 1, goto_table 10
  table 10  a known source (reg6, eth_src): goto_table 20; anything else: to the controller
  table 20  a known destination (reg6, eth_dst): output to its port; else flood

A packet-in teaches the controller its source (two flows, one in table 10 and
one in table 20) and is sent on with a packet-out. Once both ends are known,
traffic stays in the switch. Every packet-in prints one line "packet_in N"
on stdout (flushed) for the test to count.
"""
import sys

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

NETWORK = 1
T_CLASSIFY, T_SOURCES, T_FORWARD = 0, 10, 20


class LearningSwitch(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.packet_ins = 0
        self.ports = {}

    def add_flow(self, dp, table, priority, match, instructions):
        parser = dp.ofproto_parser
        dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=table, priority=priority, match=match, instructions=instructions))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        apply = ofp.OFPIT_APPLY_ACTIONS
        self.add_flow(dp, T_CLASSIFY, 0, parser.OFPMatch(),
                      [parser.OFPInstructionActions(apply, [parser.OFPActionSetField(reg6=NETWORK)]),
                       parser.OFPInstructionGotoTable(T_SOURCES)])
        self.add_flow(dp, T_SOURCES, 0, parser.OFPMatch(),
                      [parser.OFPInstructionActions(apply, [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])])
        self.add_flow(dp, T_FORWARD, 0, parser.OFPMatch(),
                      [parser.OFPInstructionActions(apply, [parser.OFPActionOutput(ofp.OFPP_FLOOD)])])
        print('connected', flush=True)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match['in_port']
        eth = packet.Packet(msg.data).get_protocol(ethernet.ethernet)
        self.packet_ins += 1
        print('packet_in %d table %d in_port %d %s -> %s' % (self.packet_ins, msg.table_id, in_port, eth.src, eth.dst), flush=True)
        self.ports[eth.src] = in_port
        self.add_flow(dp, T_SOURCES, 10, parser.OFPMatch(reg6=NETWORK, eth_src=eth.src),
                      [parser.OFPInstructionGotoTable(T_FORWARD)])
        self.add_flow(dp, T_FORWARD, 10, parser.OFPMatch(reg6=NETWORK, eth_dst=eth.src),
                      [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(in_port)])])
        out = self.ports.get(eth.dst, ofp.OFPP_FLOOD)
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                        actions=[parser.OFPActionOutput(out)], data=msg.data))


if __name__ == '__main__':
    from os_ken import cfg
    cfg.CONF(args=['--ofp-listen-host', '127.0.0.1', '--ofp-tcp-listen-port', sys.argv[1]], project='os_ken')
    app_manager.AppManager.run_apps([__name__])
