(function(){
  function key(cell){var v=cell.getAttribute('data-v');if(v===null){return cell.textContent.trim().toLowerCase();}
    return v===''?null:parseFloat(v);}
  document.querySelectorAll('table.sortable-table').forEach(function(table){
    var heads=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads,function(th,col){
      th.classList.add('sortable');th.setAttribute('tabindex','0');th.title=(th.title?th.title+' — ':'')+'click to sort';
      function sort(){
        var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
        Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',dir===1?'ascending':'descending');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
          if(x===null&&y===null){return 0;}if(x===null){return 1;}if(y===null){return -1;}
          return (x<y?-1:x>y?1:0)*dir;});
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sort();}});
    });
  });
})();
