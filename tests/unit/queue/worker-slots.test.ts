import { connectionNames } from '../../../services/core/queue/worker-slots';

describe('connectionNames (a CLIENT LIST reply)', () => {
  it('reads the name of every named connection and skips the unnamed', () => {
    const reply = [
      'id=3 addr=127.0.0.1:50412 laddr=127.0.0.1:6390 fd=8 name=platform-worker:7f0c age=12 idle=0 flags=N db=0 cmd=client|list user=default',
      'id=4 addr=127.0.0.1:50414 laddr=127.0.0.1:6390 fd=9 name= age=12 idle=1 flags=N db=0 cmd=ping user=default',
      'id=5 addr=127.0.0.1:50416 laddr=127.0.0.1:6390 fd=10 name=bull:am9icw==:w:worker-7f0c age=11 idle=0 flags=b db=0 cmd=bzpopmin user=default',
      '',
    ].join('\r\n');
    expect([...connectionNames(reply)]).toEqual(['platform-worker:7f0c', 'bull:am9icw==:w:worker-7f0c']);
  });

  it('answers no names for an empty reply', () => {
    expect(connectionNames('').size).toBe(0);
  });
});
