import { commandsPerJob, parseCommandStats } from '../../../bench/redis-commands';

describe('Redis command counts', () => {
  const info = [
    '# Commandstats',
    'cmdstat_evalsha:calls=2080,usec=200000,usec_per_call=96.15,rejected_calls=0,failed_calls=0',
    'cmdstat_xadd:calls=4000,usec=9700,usec_per_call=2.42,rejected_calls=0,failed_calls=0',
    'cmdstat_config|resetstat:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0',
    'cmdstat_eval:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
    '',
  ].join('\r\n');

  it('counts every command, and the script calls among them', () => {
    expect(parseCommandStats(info)).toEqual({ all: 6086, scripts: 2085 });
  });

  it('is nothing for a reply without command statistics', () => {
    expect(parseCommandStats('# Commandstats\r\n')).toEqual({ all: 0, scripts: 0 });
  });

  it('divides the growth between two readings by the jobs done meanwhile', () => {
    expect(commandsPerJob({ all: 100, scripts: 10 }, { all: 1_100, scripts: 218 }, 100)).toEqual({ all: 10, scripts: 2.08 });
    expect(commandsPerJob({ all: 1, scripts: 1 }, { all: 5, scripts: 2 }, 0)).toEqual({ all: 0, scripts: 0 });
  });
});
