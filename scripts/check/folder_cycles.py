"""Which folders of Sources/MixMoE use each other's declarations, and the pairs that do both ways.

  python3 scripts/check/folder_cycles.py

Name-based, not a compiler's view: a folder "uses" another when its code (comments and string
literals removed) names a type or function declared in that folder only. Good enough to see the
circles a newcomer would trip over; it can miss uses through members and extensions.
"""
import re,glob,os,itertools,collections
root='Sources/MixMoE'
folders=sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root,d)))
decl=collections.defaultdict(set)
pat=re.compile(r'^(?:public |internal |open |final |@\w+ )*(?:struct|class|enum|protocol|typealias|actor)\s+([A-Z]\w*)',re.M)
fpat=re.compile(r'^(?:public |internal )*func\s+([a-zA-Z_]\w*)',re.M)
texts={}
for f in folders:
    for p in glob.glob(os.path.join(root,f,'**','*.swift'),recursive=True):
        s=open(p).read(); texts[p]=(f,s)
        for n in pat.findall(s): decl[n].add(f)
        for n in fpat.findall(s): decl[n].add(f)
owner={n:fs for n,fs in decl.items() if len(fs)==1}
uses=collections.defaultdict(lambda: collections.defaultdict(set))
for p,(f,s) in texts.items():
    s2=re.sub(r'(#+)"""[\s\S]*?"""\1','""',s)
    s2=re.sub(r'"""[\s\S]*?"""','""',s2)
    s2=re.sub(r'//.*','',s2)
    s2=re.sub(r'"(?:[^"\\]|\\.)*"','""',s2)
    for w in set(re.findall(r'\b[A-Za-z_]\w*\b',s2)):
        if w in owner:
            g=next(iter(owner[w]))
            if g!=f and w[0].isupper(): uses[f][g].add(w)
pairs=[(a,b) for a,b in itertools.combinations(folders,2) if uses[a][b] and uses[b][a]]
print(len(pairs),'cycle pairs')
for a,b in pairs: print(' ',a,'<->',b,'|',a,'uses',sorted(uses[a][b])[:6],'|',b,'uses',sorted(uses[b][a])[:6])
print('Jobs used by:',[f for f in folders if uses[f]['Jobs']])
